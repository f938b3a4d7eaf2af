//! Scheduling of gratuitous ARP and unsolicited neighbour advertisements: a pure state machine
//! driven by the caller's clock.
//!
//! ```text
//!  acquire ──► burst: send now, then every `interval`, `count` times in all
//!                 └──► refresh (optional): one more every `refresh`, for as long as owned
//!  release ──► forgotten at once: nothing more is sent
//! ```
//!
//! A target is an (address, interface) pair, so an interface that appears later gets its own
//! burst for the addresses already owned.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// How announcements are paced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnnounceConfig {
    /// Announcements in the burst after acquiring an address, the first one immediately.
    pub count: u32,
    /// Spacing inside the burst.
    pub interval: Duration,
    /// Period of the refresh after the burst; `None` disables it.
    pub refresh: Option<Duration>,
}

impl Default for AnnounceConfig {
    /// Five announcements 1.1 s apart, no refresh: MetalLB's proven pacing. 1.1 s exceeds the
    /// 1 s ARP `locktime` of kernels before 2017, which dropped a second update inside it
    /// (MetalLB #172, `reference/l2-peers.md` §4.3), and five survive a lossy link.
    fn default() -> Self {
        Self { count: 5, interval: Duration::from_millis(1100), refresh: None }
    }
}

/// An address announced on one interface.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Target {
    /// The owned address.
    pub ip: IpAddr,
    /// The interface name.
    pub iface: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Schedule {
    /// Announcements left in the burst.
    remaining: u32,
    /// When the next one is due; `None` once the burst is over and refresh is off.
    next: Option<Instant>,
}

/// What changed when the targets were updated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// Newly announced targets.
    pub acquired: Vec<Target>,
    /// Targets no longer announced.
    pub released: Vec<Target>,
}

/// The announcement schedule of every target.
#[derive(Debug, Clone)]
pub struct Announcer {
    config: AnnounceConfig,
    targets: BTreeMap<Target, Schedule>,
}

impl Announcer {
    /// An announcer with no targets.
    pub fn new(config: AnnounceConfig) -> Self {
        Self { config, targets: BTreeMap::new() }
    }

    /// Replaces the set of targets: new ones start a burst due `now`, missing ones are dropped
    /// immediately, the others keep their schedule.
    pub fn set_targets(&mut self, wanted: BTreeSet<Target>, now: Instant) -> Changes {
        let released: Vec<Target> =
            self.targets.keys().filter(|t| !wanted.contains(*t)).cloned().collect();
        for target in &released {
            self.targets.remove(target);
        }
        let mut acquired = Vec::new();
        for target in wanted {
            if !self.targets.contains_key(&target) {
                let schedule = Schedule {
                    remaining: self.config.count,
                    next: (self.config.count > 0).then_some(now).or(self.refresh_after(now)),
                };
                self.targets.insert(target.clone(), schedule);
                acquired.push(target);
            }
        }
        Changes { acquired, released }
    }

    /// The targets to announce at `now`, in order; advances their schedules.
    pub fn due(&mut self, now: Instant) -> Vec<Target> {
        let mut due = Vec::new();
        for (target, schedule) in &mut self.targets {
            if schedule.next.is_some_and(|at| at <= now) {
                due.push(target.clone());
                schedule.remaining = schedule.remaining.saturating_sub(1);
                // From `now`, not from the missed deadline: a late tick must not fire a catch-up
                // volley.
                schedule.next = if schedule.remaining > 0 {
                    Some(now + self.config.interval)
                } else {
                    self.config.refresh.map(|period| now + period)
                };
            }
        }
        due
    }

    /// When [`Announcer::due`] next has something, if ever.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.targets.values().filter_map(|s| s.next).min()
    }

    /// The current targets.
    pub fn targets(&self) -> impl Iterator<Item = &Target> {
        self.targets.keys()
    }

    fn refresh_after(&self, now: Instant) -> Option<Instant> {
        self.config.refresh.map(|period| now + period)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(ip: &str, iface: &str) -> Target {
        Target { ip: ip.parse().expect("test address"), iface: iface.into() }
    }

    fn config(count: u32, refresh: Option<u64>) -> AnnounceConfig {
        AnnounceConfig {
            count,
            interval: Duration::from_secs(1),
            refresh: refresh.map(Duration::from_secs),
        }
    }

    #[test]
    fn burst_then_silence() {
        let t0 = Instant::now();
        let mut a = Announcer::new(config(3, None));
        let a1 = target("192.0.2.10", "eth0");
        let changes = a.set_targets(BTreeSet::from([a1.clone()]), t0);
        assert_eq!(changes.acquired, vec![a1.clone()]);
        assert_eq!(a.next_deadline(), Some(t0));
        assert_eq!(a.due(t0), vec![a1.clone()]);
        assert!(a.due(t0 + Duration::from_millis(999)).is_empty());
        assert_eq!(a.due(t0 + Duration::from_secs(1)), vec![a1.clone()]);
        assert_eq!(a.due(t0 + Duration::from_secs(2)), vec![a1]);
        assert_eq!(a.next_deadline(), None);
        assert!(a.due(t0 + Duration::from_secs(100)).is_empty());
    }

    #[test]
    fn refresh_after_the_burst() {
        let t0 = Instant::now();
        let mut a = Announcer::new(config(2, Some(30)));
        let a1 = target("2001:db8::10", "eth0");
        a.set_targets(BTreeSet::from([a1.clone()]), t0);
        assert_eq!(a.due(t0).len(), 1);
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(a.due(t1).len(), 1);
        assert_eq!(a.next_deadline(), Some(t1 + Duration::from_secs(30)));
        assert_eq!(a.due(t1 + Duration::from_secs(30)), vec![a1]);
        assert_eq!(a.next_deadline(), Some(t1 + Duration::from_secs(60)));
    }

    #[test]
    fn release_stops_at_once_and_keeps_others() {
        let t0 = Instant::now();
        let mut a = Announcer::new(config(5, None));
        let (a1, a2) = (target("192.0.2.10", "eth0"), target("192.0.2.11", "eth0"));
        a.set_targets(BTreeSet::from([a1.clone(), a2.clone()]), t0);
        assert_eq!(a.due(t0).len(), 2);
        let changes = a.set_targets(BTreeSet::from([a2.clone()]), t0 + Duration::from_millis(10));
        assert_eq!(changes, Changes { acquired: vec![], released: vec![a1] });
        assert_eq!(a.due(t0 + Duration::from_secs(1)), vec![a2.clone()]);
        // Keeping a target does not restart its burst.
        let changes = a.set_targets(BTreeSet::from([a2]), t0 + Duration::from_secs(1));
        assert_eq!(changes, Changes::default());
        assert!(a.due(t0 + Duration::from_millis(1500)).is_empty());
    }

    #[test]
    fn a_new_interface_gets_its_own_burst() {
        let t0 = Instant::now();
        let mut a = Announcer::new(config(1, None));
        a.set_targets(BTreeSet::from([target("192.0.2.10", "eth0")]), t0);
        assert_eq!(a.due(t0).len(), 1);
        let t1 = t0 + Duration::from_secs(5);
        let both = BTreeSet::from([target("192.0.2.10", "eth0"), target("192.0.2.10", "eth1")]);
        a.set_targets(both, t1);
        assert_eq!(a.due(t1), vec![target("192.0.2.10", "eth1")]);
    }

    #[test]
    fn a_late_tick_fires_once_not_a_volley() {
        let t0 = Instant::now();
        let mut a = Announcer::new(config(5, None));
        a.set_targets(BTreeSet::from([target("192.0.2.10", "eth0")]), t0);
        let late = t0 + Duration::from_secs(10);
        assert_eq!(a.due(late).len(), 1);
        assert!(a.due(late).is_empty());
        assert_eq!(a.next_deadline(), Some(late + Duration::from_secs(1)));
    }

    #[test]
    fn zero_count_with_refresh_only_refreshes() {
        let t0 = Instant::now();
        let mut a = Announcer::new(config(0, Some(10)));
        a.set_targets(BTreeSet::from([target("192.0.2.10", "eth0")]), t0);
        assert!(a.due(t0).is_empty());
        assert_eq!(a.due(t0 + Duration::from_secs(10)).len(), 1);
    }
}
