//! What the speaker's status writers share: every node writes its own part of an object's
//! status by server-side apply under a field manager of its own, with times as Kubernetes
//! writes them, and never waits on a hung request for long.
//!
//! Used by BGP mode's peer session entries ([`crate::bgp::status`]) and L2 mode's
//! `NodeCanAnnounce` conditions ([`crate::source::kubernetes::condition`]).

use std::time::{Duration, SystemTime};

use k8s_openapi::jiff::Timestamp;

/// Bound of one write: a hung request must not hold the writer's later writes forever.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// `prefix/node`, the field manager of one node's writes. Kubernetes limits a manager name to
/// 128 bytes; a longer node name is cut (on a character boundary), still one manager per node
/// in practice.
pub fn field_manager(prefix: &str, node: &str) -> String {
    let mut manager = format!("{prefix}/{node}");
    let mut end = manager.len().min(128);
    while !manager.is_char_boundary(end) {
        end -= 1;
    }
    manager.truncate(end);
    manager
}

/// Whole seconds, UTC (`2026-12-07T00:12:03Z`), as Kubernetes writes times.
pub fn rfc3339(time: SystemTime) -> Option<String> {
    let seconds = time.duration_since(SystemTime::UNIX_EPOCH).ok()?.as_secs();
    let stamp = Timestamp::from_second(i64::try_from(seconds).ok()?).ok()?;
    Some(stamp.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn managers_are_bounded_and_times_whole_seconds() {
        assert_eq!(field_manager("metallb-speaker", "n-1"), "metallb-speaker/n-1");
        // 16 + 1 bytes, then two-byte characters: byte 128 falls inside one.
        let long = format!("x{}", "é".repeat(100));
        assert_eq!(field_manager("metallb-speaker", &long).len(), 127);
        assert_eq!(field_manager("metallb-speaker", &"n".repeat(253)).len(), 128);
        let at = SystemTime::UNIX_EPOCH + Duration::from_millis(1_796_601_600_750);
        assert_eq!(rfc3339(at).as_deref(), Some("2026-12-07T00:00:00Z"));
    }
}
