//! The `metallb-bgp-announce` loop: load the file, apply it, reload it when it changes, write
//! the status file, and shut down gracefully when told to.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::config::{self, StatusEntry};
use crate::driver::{Desired, Speaker};
use crate::{Error, Result};

/// How often the file's modification time is checked: fast enough for tests and operators,
/// and a `stat` every half second costs nothing.
const POLL: Duration = Duration::from_millis(500);

/// What the announcer runs with.
#[derive(Clone, Debug)]
pub struct Options {
    /// The YAML file with peers and routes.
    pub config: PathBuf,
    /// Where to write the per-session status (YAML), if anywhere.
    pub status_file: Option<PathBuf>,
    /// The process restarted: set the GR Restart State bit on first OPENs.
    pub restarted: bool,
    /// How long to drain with GRACEFUL_SHUTDOWN before closing sessions.
    pub grace: Duration,
}

/// Runs until `stop` completes, then shuts down gracefully. A file that fails to load at start
/// is an error; one that fails on reload is logged and the previous state kept.
pub async fn run(options: Options, stop: impl Future<Output = ()>) -> Result<()> {
    let mut speaker = Speaker::new(options.restarted);
    let mut stamp = stamp_of(&options.config);
    let mut current = config::load(&options.config)?;
    apply(&mut speaker, &current);
    tokio::pin!(stop);
    let mut tick = tokio::time::interval(POLL);
    loop {
        tokio::select! {
            () = &mut stop => break,
            _ = tick.tick() => {}
        }
        let now = stamp_of(&options.config);
        if now != stamp {
            stamp = now;
            match config::load(&options.config) {
                Ok(desired) if desired != current => {
                    tracing::info!(path = %options.config.display(), "configuration changed");
                    current = desired;
                    apply(&mut speaker, &current);
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(error = %error_chain(&e), "configuration not reloaded; keeping the previous one")
                }
            }
        }
        if let Some(path) = &options.status_file
            && let Err(e) = write_status(path, &speaker)
        {
            tracing::warn!(error = %error_chain(&e), "status file not written");
        }
    }
    tracing::info!(grace = ?options.grace, "graceful shutdown");
    speaker.shutdown(options.grace).await;
    Ok(())
}

fn apply(speaker: &mut Speaker, desired: &Desired) {
    let report = speaker.apply(desired);
    for (peer, why) in &report.invalid {
        tracing::error!(%peer, %why, "peer skipped");
    }
    tracing::info!(
        started = ?report.started,
        restarted = ?report.restarted,
        stopped = ?report.stopped,
        routes = desired.routes.len(),
        "applied"
    );
}

type Stamp = Option<(SystemTime, u64)>;

fn stamp_of(path: &Path) -> Stamp {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

fn write_status(path: &Path, speaker: &Speaker) -> Result<()> {
    let entries: BTreeMap<String, StatusEntry> =
        speaker.status().iter().map(|(n, s)| (n.clone(), StatusEntry::from(s))).collect();
    let text = serde_norway::to_string(&entries).map_err(Error::SerializeStatus)?;
    // Write then rename, so a reader never sees half a file.
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|source| Error::WriteStatus { path: path.into(), source })
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cause = c.source();
    }
    s
}
