//! The on-the-wire scenario (root only), run against each routing daemon: two namespaces on the
//! lab's switch, our driver (the probe program) in `node`, the daemon in `router`. The session
//! comes Up on both sides with the daemon's 300 ms × 3 timers, we detect the daemon's death
//! (SIGKILL), the daemon detects ours, and a graceful stop (SIGTERM: AdminDown) takes the
//! daemon's session down at once. Detection times are printed, never asserted.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use netlab::Lab;

use crate::probe::Probe;

/// The daemon's timers, as configured by every [`Router`]: 300 ms both ways, multiplier 3.
pub(crate) const DETECTION: &str = "900ms";

/// What the daemon says about our session.
#[derive(Debug)]
pub(crate) struct PeerView {
    /// `up`, `down`, `init` (lower case).
    pub(crate) state: String,
    /// Why it last went down, when the daemon says.
    pub(crate) diag: Option<String>,
    /// The daemon's whole answer, for messages.
    pub(crate) raw: String,
}

/// A routing daemon playing the router.
pub(crate) trait Router {
    /// Its process label in the lab.
    fn label(&self) -> &'static str;
    /// Programs it needs besides the lab's (checked before the lab is built).
    fn missing(&self) -> Option<String>;
    /// Starts it in namespace `router`, peering from `local` with `peer`; `dir` holds its files.
    fn start(&self, lab: &mut Lab, dir: &Path, local: &str, peer: &str);
    /// Its view of the session with `peer`, if it has one.
    fn view(&self, lab: &Lab, dir: &Path, peer: &str) -> Result<Option<PeerView>, String>;
    /// The diagnostic it reports after a detection timeout, if it reports one.
    fn expired_diag(&self) -> Option<&'static str>;
    /// The diagnostic it reports after our AdminDown, if it reports one.
    fn admin_down_diag(&self) -> Option<&'static str>;
    /// Prepares its directory.
    fn dir(&self, lab: &Lab) -> PathBuf;
}

/// Whether the lab and the daemon are here; prints `SKIPPED` or fails under
/// `METALLB_REQUIRE_WIRE_TESTS=1` like [`netlab::gate`].
fn available(test: &str, router: &dyn Router) -> bool {
    if !netlab::gate(test, &[]) {
        return false;
    }
    let Some(why) = router.missing() else { return true };
    assert!(!netlab::required(), "{test}: {}=1 but {why}", netlab::REQUIRE_ENV);
    println!("SKIPPED: {test}: {why}; the test passes without asserting");
    false
}

fn wait_router(
    lab: &Lab,
    router: &dyn Router,
    dir: &Path,
    peer: &str,
    state: &str,
) -> (PeerView, Duration) {
    let mut seen = None;
    let took = lab
        .wait_for(&format!("{} to see {peer} {state}", router.label()), || {
            seen = router.view(lab, dir, peer)?;
            Ok::<_, String>(seen.as_ref().is_some_and(|v| v.state == state))
        })
        .unwrap_or_else(|e| panic!("{e}; its view: {seen:?}"));
    (seen.expect("seen"), took)
}

/// The scenario; see the module documentation.
pub(crate) fn scenario(
    test: &str,
    router: &dyn Router,
    tag: &str,
    node: &str,
    peer: &str,
    prefix: u8,
) {
    if !available(test, router) {
        return;
    }
    let mut lab = Lab::new("mlbbfd", tag).expect("lab");
    let cidr = |a: &str| format!("{a}/{prefix}");
    lab.add_host("node", "eth0", &[&cidr(node)]).expect("node");
    lab.add_host("router", "eth0", &[&cidr(peer)]).expect("router");
    let dir = router.dir(&lab);
    let name = router.label();

    // 1. Up on both sides, with the daemon's timers negotiated; stable; nothing rejected.
    router.start(&mut lab, &dir, peer, node);
    let mut probe = Probe::start(&mut lab, "node", "probe", node, peer);
    let (up, _) = probe.wait("state=Up remote=Up at 300 ms", |s| {
        s.get("state") == "Up" && s.get("remote") == "Up" && s.get("detect") == DETECTION
    });
    assert_eq!(up.get("tx"), "Some(300ms)", "{up:?}");
    wait_router(&lab, router, &dir, node, "up");
    std::thread::sleep(Duration::from_secs(3));
    let (steady, _) = probe.wait("still Up", |s| s.get("state") == "Up");
    assert_eq!(steady.get("invalid"), "{}", "{steady:?}");
    let view = router.view(&lab, &dir, node).expect("the daemon answers").expect("a session");
    assert_eq!(view.state, "up", "3 s later: {}", view.raw);

    // 2. The daemon dies without a word: we detect it.
    let killed = Instant::now();
    lab.kill(name).expect("kill the daemon");
    let (down, _) = probe.wait("state=Down", |s| s.get("state") == "Down");
    let ours = killed.elapsed();
    assert_eq!(down.get("diag"), "control_detection_time_expired", "{down:?}");
    println!("{test}: we detected {name}'s death after {ours:?} (detection time {DETECTION})");

    // 3. The daemon again; the session recovers; now we die and the daemon detects it.
    router.start(&mut lab, &dir, peer, node);
    probe.wait("Up again", |s| s.get("state") == "Up" && s.get("remote") == "Up");
    wait_router(&lab, router, &dir, node, "up");
    let killed = Instant::now();
    lab.kill("probe").expect("kill the probe");
    let (view, _) = wait_router(&lab, router, &dir, node, "down");
    let theirs = killed.elapsed();
    if let Some(diag) = router.expired_diag() {
        assert_eq!(view.diag.as_deref(), Some(diag), "{}", view.raw);
    }
    println!(
        "{test}: {name} detected our death after {theirs:?} (detection time {DETECTION}; its \
         state polled every 50 ms)"
    );

    // 4. We come back, and then stop gracefully: AdminDown, no detection time to wait out.
    let mut probe = Probe::start(&mut lab, "node", "probe", node, peer);
    probe.wait("Up after our restart", |s| s.get("state") == "Up" && s.get("remote") == "Up");
    wait_router(&lab, router, &dir, node, "up");
    let stopped = Instant::now();
    assert!(lab.terminate("probe").expect("SIGTERM the probe"), "the probe exits with success");
    let (view, _) = wait_router(&lab, router, &dir, node, "down");
    let graceful = stopped.elapsed();
    if let Some(diag) = router.admin_down_diag() {
        assert_eq!(view.diag.as_deref(), Some(diag), "{}", view.raw);
    }
    println!(
        "{test}: {name} saw our graceful stop after {graceful:?} (its state polled every 50 ms)"
    );
    lab.passed(test);
}
