//! [`KubeOutput`]: where the Kubernetes operations of a run go.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use crate::kube::KubeOperation;
use crate::{Error, Result};

/// The Kubernetes operations of one run, in the order the hook adds them.
///
/// In a run started by the framework (an input read by [`crate::HookInput::from_env`] with
/// `KUBERNETES_PATCH_PATH` set) each operation goes to that file as it is added. A first run
/// over 30k Services writes seven times its input in operations, which then never exist in
/// memory all at once. This is safe because the framework reads no output of a failed run. In
/// every other run (unit tests, [`crate::HookInput::new`]) the operations are kept and can be
/// read back with [`KubeOutput::held`].
#[derive(Debug)]
pub struct KubeOutput {
    target: Target,
    count: usize,
}

#[derive(Debug)]
enum Target {
    Held(Vec<KubeOperation>),
    Streamed(Stream),
}

/// The framework's file, opened at the first operation. The first error is kept and reported
/// by [`KubeOutput::finish`]; nothing is written after it.
#[derive(Debug)]
struct Stream {
    path: PathBuf,
    out: Option<BufWriter<File>>,
    failed: Option<std::io::Error>,
}

impl Stream {
    fn write(&mut self, op: &KubeOperation) -> std::io::Result<()> {
        let out = match &mut self.out {
            Some(out) => out,
            None => self.out.insert(BufWriter::new(File::create(&self.path)?)),
        };
        serde_json::to_writer(&mut *out, op)?;
        out.write_all(b"\n")
    }
}

impl KubeOutput {
    /// Operations kept in memory.
    pub(crate) fn in_memory() -> Self {
        Self { target: Target::Held(Vec::new()), count: 0 }
    }

    /// Operations written to `path` as they come.
    pub(crate) fn to_file(path: PathBuf) -> Self {
        Self { target: Target::Streamed(Stream { path, out: None, failed: None }), count: 0 }
    }

    /// Adds one operation.
    pub fn push(&mut self, op: KubeOperation) {
        self.count += 1;
        match &mut self.target {
            Target::Held(ops) => ops.push(op),
            Target::Streamed(stream) if stream.failed.is_none() => {
                if let Err(e) = stream.write(&op) {
                    stream.failed = Some(e);
                }
            }
            Target::Streamed(_) => {}
        }
    }

    /// The number of operations added.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether no operation was added.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The operations kept in memory: all of them, or none when they are streamed.
    pub fn held(&self) -> &[KubeOperation] {
        match &self.target {
            Target::Held(ops) => ops,
            Target::Streamed(_) => &[],
        }
    }

    /// Whether the operations go to a file as they come.
    pub(crate) fn is_streamed(&self) -> bool {
        matches!(self.target, Target::Streamed(_))
    }

    /// Completes a streamed file: flushed, or created empty when no operation came (the
    /// framework reads an empty file as "no operations"). The first write error, if any.
    pub(crate) fn finish(&mut self) -> Result<()> {
        let Target::Streamed(stream) = &mut self.target else { return Ok(()) };
        let io = |path: &PathBuf, source| Error::Io { action: "write", path: path.clone(), source };
        if let Some(source) = stream.failed.take() {
            return Err(io(&stream.path, source));
        }
        let out = match &mut stream.out {
            Some(out) => out,
            None => stream.out.insert(BufWriter::new(
                File::create(&stream.path).map_err(|e| io(&stream.path, e))?,
            )),
        };
        out.flush().map_err(|e| io(&stream.path, e))
    }
}

impl Extend<KubeOperation> for KubeOutput {
    fn extend<I: IntoIterator<Item = KubeOperation>>(&mut self, ops: I) {
        for op in ops {
            self.push(op);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kube::ObjectRef;

    fn delete(name: &str) -> KubeOperation {
        KubeOperation::DeleteInBackground(ObjectRef::cluster("v1", "Node", name))
    }

    #[test]
    fn streamed_operations_are_in_the_file_in_order_and_not_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kube");
        let mut out = KubeOutput::to_file(path.clone());
        out.extend([delete("a"), delete("b")]);
        assert_eq!((out.len(), out.held().len()), (2, 0));
        out.finish().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let names: Vec<&str> = text.lines().map(|l| &l[l.find("\"name\"").unwrap()..]).collect();
        assert_eq!(names, [r#""name":"a"}"#, r#""name":"b"}"#]);
    }

    #[test]
    fn a_streamed_run_without_operations_leaves_an_empty_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kube");
        std::fs::write(&path, "stale").unwrap();
        let mut out = KubeOutput::to_file(path.clone());
        out.finish().unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "");
    }

    #[test]
    fn a_write_error_is_reported_at_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let mut out = KubeOutput::to_file(dir.path().join("missing-dir").join("kube"));
        out.push(delete("a"));
        out.push(delete("b"));
        assert_eq!(out.len(), 2);
        let err = out.finish().unwrap_err();
        assert!(matches!(err, Error::Io { action: "write", .. }), "{err}");
    }

    #[test]
    fn held_operations_are_kept() {
        let mut out = KubeOutput::in_memory();
        out.push(delete("a"));
        assert_eq!(out.held(), &[delete("a")]);
        out.finish().unwrap();
    }
}
