//! One object whose write the API server keeps refusing never blocks the module.
//!
//! The framework runs every Kubernetes operation of a hook run and fails the whole run if any
//! of them fails (`reference/addon-operator.md` §2.3, §5.4): the run's values are dropped and
//! the task stays at the head of the queue, retried with backoff, so every later task of the
//! module (Helm renders included) waits. An admission webhook or a quota that refuses one
//! child would hold the module like that forever. The framework tells a hook nothing about its
//! previous run's operations, so the hook keeps its own record: a *write ledger*, a ConfigMap in
//! the module's namespace written with the operations of every run that writes anything.
//!
//! A write is identified by its operation and target, and its content by a hash. When a run is
//! about to emit a write that the ledger shows was already emitted [`MAX_ATTEMPTS`] times with
//! the same content, the cluster still differs after all those runs: the server refuses it.
//! The write is then held back (with every other write to the same object in that run), the
//! run succeeds, and the refusal is reported (log, metric, the Service's condition). A held
//! write is tried again every [`RETRY_AFTER_SECONDS`], so a fixed webhook or quota heals by
//! itself; a write whose content changes starts over.
//!
//! Snapshots follow the API server's watch, so a run right after a successful write may not
//! see it yet and emit it again. Counting needs [`MAX_ATTEMPTS`] such runs in a row, all
//! emitting something: a watch that lags that much is an outage of its own, and then the cost of
//! a wrong verdict is one write held back that had in fact been made.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use addon::{KubeOperation, KubeOutput, ObjectRef, RawJson};
use metallb_api::names::{labels, module};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Runs that emitted the same write before it counts as refused. The framework retries a
/// failed run after 5 s, ~6 s and ~8 s, so a refused write holds the queue for about 20 s once.
pub(crate) const MAX_ATTEMPTS: u32 = 3;

/// How long a held-back write waits before it is tried again: long enough that a write that
/// keeps failing costs one failed run (and a few seconds of retries) per period, short enough
/// that a fixed policy heals within minutes.
pub(crate) const RETRY_AFTER_SECONDS: i64 = 300;

/// Writes the ledger records per run. The first run over a large cluster writes far more; a
/// refused one among them is recorded in the next run, where it is among the few still
/// different. 1000 entries of about 150 bytes keep the ConfigMap far below its 1 MiB limit.
pub(crate) const LEDGER_CAP: usize = 1000;

/// The ConfigMap of the ledger in the module's namespace.
pub(crate) const LEDGER_NAME: &str = "metallb-write-ledger";
/// Its data key.
const LEDGER_KEY: &str = "writes";

/// jq filter of the ledger's snapshot binding.
pub(crate) const LEDGER_FILTER: &str = r#"{writes: (.data // {}).writes}"#;

/// One write the ledger remembers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Entry {
    /// Operation and target, see [`Target::key`].
    write: String,
    /// FNV-1a of the operation's JSON.
    hash: String,
    /// Runs that emitted it with this content.
    attempts: u32,
    /// When it was last emitted (Unix seconds).
    last: i64,
}

/// A write held back because the server refused it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Refused {
    pub(crate) kind: String,
    pub(crate) namespace: String,
    pub(crate) name: String,
    /// Operation and subresource, for the log.
    pub(crate) write: String,
    /// Runs that emitted it.
    pub(crate) attempts: u32,
}

/// What happened to one operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Admission {
    /// Emitted.
    Written,
    /// Held back: refused before, or its object's other write was.
    HeldBack,
}

/// The object an operation writes.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
struct Target {
    operation: String,
    kind: String,
    namespace: String,
    name: String,
    subresource: String,
}

impl Target {
    /// The target of an operation and the hash of its content, from its fields: the object's
    /// metadata for creates (read without building a tree), the target fields else. Neither
    /// serializes the operation: a first run over a large cluster emits hundreds of thousands.
    fn of(op: &KubeOperation) -> serde_json::Result<(Self, u64)> {
        #[derive(Deserialize, Default)]
        struct Meta<'a> {
            #[serde(borrow, default)]
            namespace: Option<Cow<'a, str>>,
            #[serde(borrow, default)]
            name: Option<Cow<'a, str>>,
        }
        #[derive(Deserialize)]
        struct Object<'a> {
            #[serde(borrow, default)]
            kind: Option<Cow<'a, str>>,
            #[serde(borrow, default)]
            metadata: Option<Meta<'a>>,
        }
        let at = |operation: &str, t: &ObjectRef, subresource: Option<&String>| Self {
            operation: operation.to_owned(),
            kind: t.kind.clone(),
            namespace: t.namespace.clone().unwrap_or_default(),
            name: t.name.clone(),
            subresource: subresource.cloned().unwrap_or_default(),
        };
        let (target, content): (Self, Cow<'_, str>) = match op {
            KubeOperation::Create { object }
            | KubeOperation::CreateOrUpdate { object }
            | KubeOperation::CreateIfNotExists { object } => {
                let o: Object<'_> = object.parse()?;
                let meta = o.metadata.unwrap_or_default();
                let target = Self {
                    operation: operation_name(op).to_owned(),
                    kind: o.kind.unwrap_or_default().into_owned(),
                    namespace: meta.namespace.unwrap_or_default().into_owned(),
                    name: meta.name.unwrap_or_default().into_owned(),
                    subresource: String::new(),
                };
                (target, Cow::Borrowed(object.get()))
            }
            KubeOperation::Delete(t)
            | KubeOperation::DeleteInBackground(t)
            | KubeOperation::DeleteNonCascading(t) => {
                (at(operation_name(op), t, None), Cow::Borrowed(""))
            }
            KubeOperation::MergePatch { target, merge_patch, options } => (
                at(operation_name(op), target, options.subresource.as_ref()),
                Cow::Borrowed(merge_patch.get()),
            ),
            KubeOperation::JsonPatch { target, json_patch, options } => (
                at(operation_name(op), target, options.subresource.as_ref()),
                Cow::Owned(serde_json::to_string(json_patch)?),
            ),
            KubeOperation::JqPatch { target, jq_filter, options } => (
                at(operation_name(op), target, options.subresource.as_ref()),
                Cow::Borrowed(jq_filter.as_str()),
            ),
        };
        let hash = fnv1a(content.as_bytes(), fnv1a(target.key().as_bytes(), FNV_OFFSET));
        Ok((target, hash))
    }

    fn key(&self) -> String {
        format!(
            "{} {} {}/{} {}",
            self.operation, self.kind, self.namespace, self.name, self.subresource
        )
    }

    fn object(&self) -> (String, String, String) {
        (self.kind.clone(), self.namespace.clone(), self.name.clone())
    }
}

/// The operations of one run, through the ledger.
pub(crate) struct WriteGuard<'o> {
    out: &'o mut KubeOutput,
    previous: BTreeMap<String, Entry>,
    next: BTreeMap<String, Entry>,
    held_objects: BTreeSet<(String, String, String)>,
    refused: Vec<Refused>,
    emitted: usize,
    now: i64,
}

impl<'o> WriteGuard<'o> {
    /// A guard over `out`, with the stored ledger (`LEDGER_FILTER`'s result, if any).
    pub(crate) fn new(out: &'o mut KubeOutput, stored: Option<&Value>, now: i64) -> Self {
        let previous = stored
            .and_then(|v| v.get(LEDGER_KEY))
            .and_then(Value::as_str)
            .and_then(|text| serde_json::from_str::<Vec<Entry>>(text).ok())
            .unwrap_or_default()
            .into_iter()
            .map(|e| (e.write.clone(), e))
            .collect();
        Self {
            out,
            previous,
            next: BTreeMap::new(),
            held_objects: BTreeSet::new(),
            refused: Vec::new(),
            emitted: 0,
            now,
        }
    }

    /// Emits `op` unless the ledger shows the server refuses it.
    pub(crate) fn push(&mut self, op: KubeOperation) -> serde_json::Result<Admission> {
        // Nothing to compare with and the ledger full: the common case of a large first run.
        if self.previous.is_empty() && self.next.len() >= LEDGER_CAP {
            self.emitted += 1;
            self.out.push(op);
            return Ok(Admission::Written);
        }
        let (target, hash) = Target::of(&op)?;
        if !self.held_objects.is_empty() && self.held_objects.contains(&target.object()) {
            return Ok(Admission::HeldBack);
        }
        let (key, hash) = (target.key(), format!("{hash:016x}"));
        let before = self.previous.get(&key).filter(|e| e.hash == hash);
        let attempts = before.map_or(0, |e| e.attempts);
        let last = before.map_or(i64::MIN, |e| e.last);
        if attempts >= MAX_ATTEMPTS && self.now < last.saturating_add(RETRY_AFTER_SECONDS) {
            self.held_objects.insert(target.object());
            self.refused.push(Refused {
                kind: target.kind,
                namespace: target.namespace,
                name: target.name,
                write: format!("{} {}", target.operation, target.subresource).trim().to_owned(),
                attempts,
            });
            self.record(Entry { write: key, hash, attempts, last });
            return Ok(Admission::HeldBack);
        }
        self.record(Entry { write: key, hash, attempts: attempts + 1, last: self.now });
        self.emitted += 1;
        self.out.push(op);
        Ok(Admission::Written)
    }

    fn record(&mut self, entry: Entry) {
        if self.next.len() < LEDGER_CAP || self.next.contains_key(&entry.write) {
            self.next.insert(entry.write.clone(), entry);
        }
    }

    /// Whether a write to this object was held back in this run.
    pub(crate) fn is_held(&self, kind: &str, namespace: &str, name: &str) -> bool {
        self.held_objects.contains(&(kind.to_owned(), namespace.to_owned(), name.to_owned()))
    }

    /// Writes the ledger when this run emitted anything or held back a write it had not held
    /// before; a run that does neither leaves it (and the cluster) as it is. Returns the
    /// writes held back.
    pub(crate) fn finish(self) -> serde_json::Result<Vec<Refused>> {
        let unchanged = self.next.values().all(|e| self.previous.get(&e.write) == Some(e));
        if self.emitted > 0 || !unchanged {
            let entries: Vec<&Entry> = self.next.values().collect();
            let object = serde_json::json!({
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {
                    "name": LEDGER_NAME,
                    "namespace": module::NAMESPACE,
                    "labels": {labels::HERITAGE: labels::HERITAGE_VALUE, labels::MODULE: module::NAME},
                },
                "data": {LEDGER_KEY: serde_json::to_string(&entries)?},
            });
            self.out.push(KubeOperation::CreateOrUpdate { object: RawJson::new(&object)? });
        }
        Ok(self.refused)
    }
}

/// The framework's name of an operation (`operation` in its JSON).
fn operation_name(op: &KubeOperation) -> &'static str {
    match op {
        KubeOperation::Create { .. } => "Create",
        KubeOperation::CreateOrUpdate { .. } => "CreateOrUpdate",
        KubeOperation::CreateIfNotExists { .. } => "CreateIfNotExists",
        KubeOperation::Delete(_) => "Delete",
        KubeOperation::DeleteInBackground(_) => "DeleteInBackground",
        KubeOperation::DeleteNonCascading(_) => "DeleteNonCascading",
        KubeOperation::MergePatch { .. } => "MergePatch",
        KubeOperation::JsonPatch { .. } => "JSONPatch",
        KubeOperation::JqPatch { .. } => "JQPatch",
    }
}

/// FNV-1a's 64-bit offset basis.
const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// 64-bit FNV-1a continued from `hash`: stable across builds and platforms, unlike the
/// standard library's hasher, so an upgrade of the hook binary does not reset the ledger.
fn fnv1a(bytes: &[u8], hash: u64) -> u64 {
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes.iter().fold(hash, |h, &b| (h ^ u64::from(b)).wrapping_mul(PRIME))
}

#[cfg(test)]
mod tests;
