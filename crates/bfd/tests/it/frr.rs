//! On the wire against FRR's bfdd (root only): two namespaces on the lab's switch, our driver
//! (the probe program) in `node`, bfdd in `router`. For IPv4 and IPv6: the session comes Up on
//! both sides, we detect bfdd's death (SIGKILL), and bfdd detects ours. Detection times are
//! printed, never asserted.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use netlab::{Lab, Spawn};

use crate::probe::Probe;

const BFDD: &str = "/usr/lib/frr/bfdd";
/// FRR drops privileges to this user; its files must be readable and writable by it.
const FRR_USER: &str = "frr";

/// Whether the lab and bfdd are here; prints `SKIPPED` or fails under
/// `METALLB_REQUIRE_WIRE_TESTS=1` like [`netlab::gate`].
fn available(test: &str) -> bool {
    if !netlab::gate(test, &["vtysh"]) {
        return false;
    }
    if Path::new(BFDD).is_file() {
        return true;
    }
    let why = format!("{BFDD} is missing (Debian package frr)");
    assert!(!netlab::required(), "{test}: {}=1 but {why}", netlab::REQUIRE_ENV);
    println!("SKIPPED: {test}: {why}; the test passes without asserting");
    false
}

/// bfdd's files: configuration, pid file, vty and control sockets.
fn frr_dir(lab: &Lab) -> PathBuf {
    let dir = lab.dir().join("frr");
    std::fs::create_dir_all(&dir).expect("create the frr directory");
    // The lab's directory is private to root; FRR's user only needs to pass through it.
    std::fs::set_permissions(lab.dir(), std::fs::Permissions::from_mode(0o711)).expect("chmod");
    netlab::run("chown", &[&format!("{FRR_USER}:{FRR_USER}"), dir.to_str().expect("utf-8")])
        .expect("chown the frr directory");
    dir
}

fn start_bfdd(lab: &mut Lab, dir: &Path, local: &str, peer: &str) {
    let config = format!(
        "bfd\n peer {peer} local-address {local}\n  receive-interval 300\n  \
         transmit-interval 300\n  detect-multiplier 3\n exit\nexit\n"
    );
    let conf = dir.join("bfdd.conf");
    std::fs::write(&conf, config).expect("write bfdd.conf");
    let path = |name: &str| dir.join(name).to_string_lossy().into_owned();
    let args = [
        "-f".to_owned(),
        path("bfdd.conf"),
        "-i".to_owned(),
        path("bfdd.pid"),
        // No zebra in the lab: bfdd retries that socket quietly and runs single-hop sessions
        // on its own.
        "-z".to_owned(),
        path("zserv.api"),
        "--vty_socket".to_owned(),
        dir.to_string_lossy().into_owned(),
        "--bfdctl".to_owned(),
        path("bfdd.sock"),
        "-u".to_owned(),
        FRR_USER.to_owned(),
        "-g".to_owned(),
        FRR_USER.to_owned(),
        // No TCP vty: the socket in `dir` is enough for vtysh.
        "-P".to_owned(),
        "0".to_owned(),
        "--log".to_owned(),
        "stdout".to_owned(),
    ];
    lab.spawn(Spawn::new("router", "bfdd", BFDD).args(args)).expect("start bfdd");
}

/// bfdd's view of `peer` (`show bfd peers json`), if it has one yet.
fn frr_peer(lab: &Lab, dir: &Path, peer: &str) -> Result<Option<serde_json::Value>, String> {
    let socket_dir = dir.to_string_lossy().into_owned();
    let out = lab
        .exec(
            "router",
            &["vtysh", "--vty_socket", &socket_dir, "-d", "bfdd", "-c", "show bfd peers json"],
        )
        .map_err(|e| e.to_string())?;
    let peers: serde_json::Value = serde_json::from_str(&out).map_err(|e| format!("{e}: {out}"))?;
    Ok(peers.as_array().and_then(|all| all.iter().find(|p| p["peer"] == peer)).cloned())
}

fn wait_frr(lab: &Lab, dir: &Path, peer: &str, status: &str) -> (serde_json::Value, Duration) {
    let mut seen = None;
    let took = lab
        .wait_for(&format!("bfdd to see {peer} {status}"), || {
            seen = frr_peer(lab, dir, peer)?;
            Ok::<_, String>(seen.as_ref().is_some_and(|p| p["status"] == status))
        })
        .unwrap_or_else(|e| panic!("{e}; bfdd's view: {seen:?}"));
    (seen.expect("seen"), took)
}

fn scenario(test: &str, tag: &str, node: &str, router: &str, prefix: u8) {
    if !available(test) {
        return;
    }
    let mut lab = Lab::new("mlbbfd", tag).expect("lab");
    let cidr = |a: &str| format!("{a}/{prefix}");
    lab.add_host("node", "eth0", &[&cidr(node)]).expect("node");
    lab.add_host("router", "eth0", &[&cidr(router)]).expect("router");
    let dir = frr_dir(&lab);

    // 1. The session comes Up on both sides, with FRR's 300 ms timers negotiated.
    start_bfdd(&mut lab, &dir, router, node);
    let mut probe = Probe::start(&mut lab, "node", "probe", node, router);
    let (up, _) = probe.wait("state=Up remote=Up at 300 ms", |s| {
        s.get("state") == "Up" && s.get("remote") == "Up" && s.get("detect") == "900ms"
    });
    assert_eq!(up.get("tx"), "Some(300ms)", "{up:?}");
    let (frr, _) = wait_frr(&lab, &dir, node, "up");
    assert_eq!(frr["remote-receive-interval"], 300, "{frr}");
    assert_eq!(frr["remote-transmit-interval"], 300, "{frr}");
    // Stable: a few detection times later still Up on both sides, nothing rejected.
    std::thread::sleep(Duration::from_secs(3));
    let (steady, _) = probe.wait("still Up", |s| s.get("state") == "Up");
    assert_eq!(steady.get("invalid"), "{}", "{steady:?}");
    assert_eq!(frr_peer(&lab, &dir, node).expect("vtysh").expect("peer")["status"], "up");

    // 2. bfdd dies without a word: our side detects it.
    let killed = Instant::now();
    lab.kill("bfdd").expect("kill bfdd");
    let (down, _) = probe.wait("state=Down", |s| s.get("state") == "Down");
    let ours = killed.elapsed();
    assert_eq!(down.get("diag"), "control_detection_time_expired", "{down:?}");
    println!("{test}: we detected bfdd's death after {ours:?} (detection time 900 ms)");

    // 3. bfdd again; the session recovers; now we die and bfdd detects it.
    start_bfdd(&mut lab, &dir, router, node);
    probe.wait("Up again", |s| s.get("state") == "Up" && s.get("remote") == "Up");
    wait_frr(&lab, &dir, node, "up");
    let killed = Instant::now();
    lab.kill("probe").expect("kill the probe");
    let (frr, polled) = wait_frr(&lab, &dir, node, "down");
    let theirs = killed.elapsed();
    assert_eq!(frr["diagnostic"], "control detection time expired", "{frr}");
    println!(
        "{test}: bfdd detected our death after {theirs:?} (detection time 900 ms; vtysh polled \
         every 50 ms, {polled:?} of polling)"
    );
    lab.passed(test);
}

#[test]
fn frr_bfdd_ipv4() {
    scenario("bfd::frr_bfdd_ipv4", "frr4", "192.0.2.1", "192.0.2.2", 24);
}

#[test]
fn frr_bfdd_ipv6() {
    scenario("bfd::frr_bfdd_ipv6", "frr6", "2001:db8::1", "2001:db8::2", 64);
}
