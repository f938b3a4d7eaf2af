//! The probe program (`metallb-bfd-probe`, our driver with one session) inside a lab
//! namespace, and what it prints.

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use netlab::{Lab, Spawn};

use crate::DEADLINE;

/// One `status ...` line of the probe: `key=value` fields.
#[derive(Debug, Clone)]
pub(crate) struct Status(BTreeMap<String, String>);

impl Status {
    pub(crate) fn get(&self, key: &str) -> &str {
        self.0.get(key).map_or("", String::as_str)
    }

    fn parse(line: &str) -> Option<Status> {
        let fields = line.strip_prefix("status ")?;
        let mut map = BTreeMap::new();
        // `invalid={...}` is last and may contain spaces: everything after it is its value.
        let (simple, invalid) = fields.split_once(" invalid=").unwrap_or((fields, ""));
        for field in simple.split_whitespace() {
            let (k, v) = field.split_once('=')?;
            map.insert(k.to_owned(), v.to_owned());
        }
        map.insert("invalid".to_owned(), invalid.to_owned());
        Some(Status(map))
    }
}

/// A running probe and the lines it printed.
pub(crate) struct Probe {
    label: String,
    lines: mpsc::Receiver<Status>,
    last: Option<Status>,
}

impl Probe {
    /// Starts the probe in `ns` with a session from `local` to `peer` (default timers).
    pub(crate) fn start(lab: &mut Lab, ns: &str, label: &str, local: &str, peer: &str) -> Probe {
        let program = env!("CARGO_BIN_EXE_metallb-bfd-probe");
        lab.spawn(Spawn::new(ns, label, program).args([local, peer]).piped_stdout())
            .expect("start the probe");
        let stdout = lab.take_stdout(label).expect("the probe's stdout");
        let (tx, lines) = mpsc::channel();
        // Ends when the probe's stdout closes (it exited or was killed).
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(status) = Status::parse(&line)
                    && tx.send(status).is_err()
                {
                    return;
                }
            }
        });
        Probe { label: label.to_owned(), lines, last: None }
    }

    /// Waits (bounded) for a status line satisfying `condition`; returns it and how long the
    /// wait took.
    pub(crate) fn wait(
        &mut self,
        what: &str,
        condition: impl Fn(&Status) -> bool,
    ) -> (Status, Duration) {
        let start = Instant::now();
        loop {
            if let Some(last) = &self.last
                && condition(last)
            {
                return (last.clone(), start.elapsed());
            }
            let left = DEADLINE.checked_sub(start.elapsed()).unwrap_or_default();
            match self.lines.recv_timeout(left) {
                Ok(status) => self.last = Some(status),
                Err(_) => panic!(
                    "{}: no status with {what} within {DEADLINE:?}; last: {:?}",
                    self.label, self.last
                ),
            }
        }
    }
}
