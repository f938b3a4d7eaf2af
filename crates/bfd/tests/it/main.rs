//! Integration tests of the BFD driver: over loopback in one process, and on the wire in
//! network namespaces against FRR's bfdd and BIRD 2.

use std::time::Duration;

mod bird;
mod frr;
mod loopback;
mod probe;
mod wire;

/// Bound of every wait: the events take milliseconds to a second; the bound only turns a hang
/// into a failure.
const DEADLINE: Duration = Duration::from_secs(10);
