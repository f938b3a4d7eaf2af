//! The file source: the ARCHITECTURE §5 YAML/JSON document, polled for changes.
//!
//! The file is re-read every `poll_interval` (default 1 s, `--source-poll-interval`) and
//! compared by content, not modification time: mtime has coarse granularity on some file
//! systems and misses a quick double write, a byte comparison of a small file does not. Polling
//! also follows ConfigMap mounts, whose symlink swap inotify watchers easily lose. A write in
//! progress can be read half-done: it then fails to parse, is counted as an error, and the next
//! poll picks up the finished file (writers should still prefer write-then-rename).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::MissedTickBehavior;

use super::{DesiredState, Source, SourceError, Updates};
use crate::error_chain;
use crate::metrics::Metrics;

/// Default polling period: changes apply within a second, and reading a small file once a
/// second costs nothing.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(1);

/// Desired state from a local file.
#[derive(Debug, Clone)]
pub struct FileSource {
    path: PathBuf,
    poll_interval: Duration,
}

impl FileSource {
    /// A source reading `path` every `poll_interval`.
    pub fn new(path: impl Into<PathBuf>, poll_interval: Duration) -> Self {
        Self { path: path.into(), poll_interval }
    }

    fn read(&self) -> Result<Vec<u8>, SourceError> {
        std::fs::read(&self.path)
            .map_err(|source| SourceError::Read { path: self.path.clone(), source })
    }
}

/// Parses a document (YAML or JSON: JSON is YAML) and validates it.
pub fn parse(text: &str) -> Result<DesiredState, SourceError> {
    parse_at(Path::new("<inline>"), text.as_bytes())
}

fn parse_at(path: &Path, bytes: &[u8]) -> Result<DesiredState, SourceError> {
    // An empty file is far more often a write caught half-way than a wish to announce nothing,
    // and withdrawing every address on such a glitch would be an outage.
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(SourceError::Invalid(format!(
            "{} is empty; write `addresses: []` to announce nothing",
            path.display()
        )));
    }
    let state: DesiredState = serde_norway::from_slice(bytes)
        .map_err(|source| SourceError::Parse { path: path.to_owned(), source })?;
    state.validate()?;
    Ok(state)
}

impl Source for FileSource {
    /// Never fails on content: a missing, unreadable or invalid file is counted and logged
    /// (once per distinct problem) and retried every poll; until the first good load nothing is
    /// published and the speaker is not ready, after it the last good state stays in force.
    async fn run(self, updates: Updates, metrics: Arc<Metrics>) -> Result<(), SourceError> {
        let mut tick = tokio::time::interval(self.poll_interval);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        // The bytes last handled (applied or rejected) and the last problem logged.
        let mut last: Option<Vec<u8>> = None;
        let mut problem: Option<String> = None;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = updates.closed() => return Ok(()),
            }
            let loaded = self.read().and_then(|bytes| {
                if last.as_ref() == Some(&bytes) {
                    return Ok(None);
                }
                last = Some(bytes.clone());
                parse_at(&self.path, &bytes).map(Some)
            });
            match loaded {
                Ok(None) => {}
                Ok(Some(state)) => {
                    problem = None;
                    let first = updates.borrow().is_none();
                    tracing::info!(
                        path = %self.path.display(),
                        addresses = state.addresses.len(),
                        "desired state {}", if first { "loaded" } else { "reloaded" }
                    );
                    metrics.source_loads.inc();
                    updates.send_replace(Some(Arc::new(state)));
                }
                Err(error) => {
                    if matches!(error, SourceError::Read { .. }) {
                        // Read again once the file is back, even with the same bytes.
                        last = None;
                    }
                    let text = error_chain(&error);
                    if problem.as_ref() != Some(&text) {
                        metrics.source_errors.inc();
                        if updates.borrow().is_none() {
                            tracing::warn!(error = %text, "no desired state yet; retrying every poll");
                        } else {
                            tracing::warn!(error = %text, "keeping the last good desired state");
                        }
                        problem = Some(text);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::watch;

    const EXAMPLE: &str = "\
classes:                      # optional; per-class interface list (absent = automatic choice)
  front: {interfaces: [eth0]}
addresses:
  - ip: 198.51.100.10         # IPv4 or IPv6
    class: front              # optional
    node: front-0             # the announcing node
    backups: [front-1, front-2]   # take over in this order while `node` is dead in the gossip view
";

    #[test]
    fn parses_the_documented_example() {
        let state = parse(EXAMPLE).expect("the ARCHITECTURE example is valid");
        assert_eq!(state.classes["front"].interfaces, ["eth0"]);
        let a = &state.addresses[0];
        assert_eq!(a.ip.to_string(), "198.51.100.10");
        assert_eq!((a.class.as_deref(), a.node.as_str()), (Some("front"), "front-0"));
        assert_eq!(a.backups, ["front-1", "front-2"]);
    }

    #[test]
    fn parses_json_too() {
        let state = parse(r#"{"addresses": [{"ip": "2001:db8::10", "node": "n1"}]}"#)
            .expect("json is yaml");
        assert_eq!(state.addresses[0].ip.to_string(), "2001:db8::10");
        assert!(state.classes.is_empty());
    }

    #[test]
    fn rejects_bad_documents_with_a_reason() {
        let cases = [
            ("addresses: [{ip: 192.0.2.1, node: a, nodes: b}]", "unknown field `nodes`"),
            ("adresses: []", "unknown field `adresses`"),
            ("classes: {front: {interface: [eth0]}}", "unknown field `interface`"),
            ("addresses: [{ip: 192.0.2.300, node: a}]", "invalid IP address"),
            ("addresses: [{ip: 192.0.2.1}]", "missing field `node`"),
            ("addresses: [{ip: 192.0.2.1, node: a}, {ip: 192.0.2.1, node: b}]", "listed twice"),
            ("addresses: [{ip: 192.0.2.1, node: ''}]", "empty node"),
            ("  \n", "is empty"),
        ];
        for (text, expected) in cases {
            let error = parse(text).expect_err(text);
            let message = error_chain(&error);
            assert!(message.contains(expected), "{text}: {message}");
        }
        assert_eq!(parse("addresses: []").expect("empty list is fine"), DesiredState::default());
    }

    #[tokio::test(start_paused = true)]
    async fn reloads_on_change_and_keeps_the_last_good_state() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state.yaml");
        std::fs::write(&path, "addresses: [{ip: 192.0.2.10, node: a}]").expect("write");
        let (tx, mut rx) = watch::channel(None);
        let metrics = Arc::new(Metrics::new());
        let source = FileSource::new(&path, Duration::from_millis(100));
        let task = tokio::spawn(source.run(tx, metrics.clone()));

        let first = next(&mut rx).await;
        assert_eq!(first.addresses[0].node, "a");

        std::fs::write(&path, "addresses: [{ip: 192.0.2.10, node: b}]").expect("write");
        let second = next(&mut rx).await;
        assert_eq!(second.addresses[0].node, "b");

        std::fs::write(&path, "addresses: [{ip: 192.0.2.10, nod: c}]").expect("write");
        std::fs::remove_file(&path).expect("remove");
        // Poll a while: bad content and a missing file never replace the good state.
        for _ in 0..10 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(!rx.has_changed().expect("source alive"));
        assert_eq!(metrics.source_loads.get(), 2);
        assert!(metrics.source_errors.get() >= 1);

        std::fs::write(&path, "addresses: [{ip: 192.0.2.10, node: c}]").expect("write");
        assert_eq!(next(&mut rx).await.addresses[0].node, "c");
        drop(rx);
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(task.is_finished(), "the source stops when nobody listens");
    }

    #[tokio::test(start_paused = true)]
    async fn a_bad_first_load_is_counted_and_retried_not_fatal() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state.yaml");
        let (tx, mut rx) = watch::channel(None);
        let metrics = Arc::new(Metrics::new());
        let task =
            tokio::spawn(FileSource::new(&path, DEFAULT_POLL_INTERVAL).run(tx, metrics.clone()));
        for _ in 0..3 {
            tokio::time::sleep(DEFAULT_POLL_INTERVAL).await;
        }
        assert!(!task.is_finished(), "a missing file is not fatal");
        std::fs::write(&path, "addresses: [{ip: 192.0.2.10, nod: a}]").expect("write");
        for _ in 0..3 {
            tokio::time::sleep(DEFAULT_POLL_INTERVAL).await;
        }
        assert!(!task.is_finished(), "invalid content is not fatal");
        assert!(rx.borrow().is_none(), "nothing published before a good load");
        // Missing, then invalid: two distinct problems, each counted once.
        assert_eq!(metrics.source_errors.get(), 2);
        std::fs::write(&path, "addresses: [{ip: 192.0.2.10, node: a}]").expect("write");
        assert_eq!(next(&mut rx).await.addresses[0].node, "a");
        assert_eq!(metrics.source_loads.get(), 1);
        task.abort();
    }

    async fn next(rx: &mut watch::Receiver<Option<Arc<DesiredState>>>) -> Arc<DesiredState> {
        loop {
            rx.changed().await.expect("source alive");
            if let Some(state) = rx.borrow_and_update().clone() {
                return state;
            }
        }
    }
}
