//! Gossip drivers in one process over loopback UDP, real sockets and real time, default
//! tuning: join, failure detection, graceful leave, a wrong key.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use metallb_speaker::gossip::codec::KeyRing;
use metallb_speaker::gossip::{Gossip, GossipConfig, Key, Liveness, MemberState};
use metallb_speaker::metrics::Metrics;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

/// Generous bound of every wait: the events take about a second; the bound only turns a hang
/// into a failure.
const DEADLINE: Duration = Duration::from_secs(10);

struct Member {
    addr: SocketAddr,
    view: watch::Receiver<Arc<Liveness>>,
    metrics: Arc<Metrics>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

async fn start(name: &str, key: u8, peers: Vec<SocketAddr>) -> Member {
    start_with_grace(name, key, peers, None).await
}

fn ring(key: u8) -> KeyRing {
    KeyRing::single(Key::new(vec![key; 32]).expect("32 bytes"))
}

/// A member; `grace` replaces the default join grace (5 s) where a test must see it end.
async fn start_with_grace(
    name: &str,
    key: u8,
    peers: Vec<SocketAddr>,
    grace: Option<Duration>,
) -> Member {
    start_with(name, "127.0.0.1:0", peers, ring(key), |config| {
        if let Some(grace) = grace {
            config.join_grace = grace;
        }
    })
    .await
}

/// A member bound to `bind` with `keys`, its configuration adjusted by `adjust`.
async fn start_with(
    name: &str,
    bind: &str,
    peers: Vec<SocketAddr>,
    keys: KeyRing,
    adjust: impl FnOnce(&mut GossipConfig),
) -> Member {
    let bind: SocketAddr = bind.parse().expect("addr");
    let metrics = Arc::new(Metrics::new());
    let mut config = GossipConfig::new(name.into(), bind, peers, keys);
    adjust(&mut config);
    let gossip = Gossip::bind(config, metrics.clone()).await.expect("bind");
    let addr = gossip.local_addr().expect("bound");
    let view = gossip.liveness();
    let (stop, stopped) = oneshot::channel();
    let task = tokio::spawn(async move {
        gossip.run(stopped).await.expect("gossip runs");
    });
    Member { addr, view, metrics, stop: Some(stop), task }
}

async fn wait_for(
    view: &mut watch::Receiver<Arc<Liveness>>,
    what: &str,
    condition: impl Fn(&Liveness) -> bool,
) -> Duration {
    let start = Instant::now();
    let waited = tokio::time::timeout(DEADLINE, async {
        view.wait_for(|v| condition(v)).await.map(|_| ()).is_ok()
    })
    .await;
    match waited {
        Ok(running) => assert!(running, "gossip stopped while waiting for {what}"),
        Err(_) => panic!("timed out waiting for {what}: {:?}", view.borrow()),
    }
    start.elapsed()
}

fn state(view: &Liveness, name: &str) -> Option<MemberState> {
    view.members().get(name).copied()
}

/// Three members, `b` and `c` joining through `a`; returns once everyone sees everyone.
async fn trio() -> Vec<Member> {
    let a = start("a", 1, vec![]).await;
    let b = start("b", 1, vec![a.addr]).await;
    let c = start("c", 1, vec![a.addr]).await;
    let mut members = vec![a, b, c];
    for member in &mut members {
        wait_for(&mut member.view, "all three alive", |v| {
            ["a", "b", "c"].iter().all(|n| state(v, n) == Some(MemberState::Alive))
        })
        .await;
    }
    members
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gossip_members_join_and_detect_a_killed_member() {
    let mut members = trio().await;
    let text = members[1].metrics.encode();
    assert!(text.contains(r#"metallb_speaker_gossip_members{state="alive"} 3"#), "{text}");

    // Abort = kill -9 for a task: it stops answering without a word.
    members[0].task.abort();
    for member in &mut members[1..] {
        let took =
            wait_for(&mut member.view, "a dead", |v| state(v, "a") == Some(MemberState::Dead))
                .await;
        println!("killed member declared dead after {took:?}");
        assert!(!member.view.borrow().is_live("a"));
        assert!(member.view.borrow().is_live("b") && member.view.borrow().is_live("c"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gossip_a_leaving_member_is_gone_at_once() {
    let mut members = trio().await;
    let stop = members[2].stop.take().expect("running");
    stop.send(()).expect("running");
    for member in &mut members[..2] {
        let took =
            wait_for(&mut member.view, "c left", |v| state(v, "c") == Some(MemberState::Left))
                .await;
        // Leave is one datagram away; the failure detector would need ~1 s.
        assert!(took < Duration::from_millis(500), "leave took {took:?}");
    }
    (&mut members[2].task).await.expect("c stopped cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gossip_rejects_a_wrong_key() {
    let mut a = start("a", 1, vec![]).await;
    let mut b = start("b", 1, vec![a.addr]).await;
    let mut intruder = start("x", 2, vec![a.addr]).await;
    wait_for(&mut b.view, "a alive", |v| state(v, "a") == Some(MemberState::Alive)).await;
    wait_for(&mut a.view, "b alive", |v| state(v, "b") == Some(MemberState::Alive)).await;
    // The intruder pings a every second (seed interval); each one is dropped and counted.
    let series = r#"metallb_speaker_gossip_dropped_total{reason="bad_mac"}"#;
    let start = Instant::now();
    while !a.metrics.encode().lines().any(|l| l.starts_with(series) && !l.ends_with(" 0")) {
        assert!(start.elapsed() < DEADLINE, "no bad_mac drop counted: {}", a.metrics.encode());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(state(&a.view.borrow(), "x"), None, "the intruder never joins");
    assert_eq!(state(&b.view.borrow(), "x"), None);
    assert_eq!(intruder.view.borrow_and_update().members().len(), 1, "nobody answered x");
}

#[tokio::test]
async fn members_join_through_peers_discovered_at_run_time() {
    // As with the Kubernetes source: no static peers; the speaker pods' addresses arrive later,
    // each member's own among them.
    let key = || ring(3);
    let bind: SocketAddr = "127.0.0.1:0".parse().expect("addr");
    let mut members = Vec::new();
    for name in ["a", "b", "c"] {
        let metrics = Arc::new(Metrics::new());
        let gossip = Gossip::bind(GossipConfig::new(name.into(), bind, vec![], key()), metrics)
            .await
            .expect("bind");
        let (seeds, updates) = watch::channel(Vec::new());
        let gossip = gossip.with_seed_updates(updates);
        let addr = gossip.local_addr().expect("bound");
        let view = gossip.liveness();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(gossip.run(stopped));
        members.push((addr, view, seeds, stop, task));
    }
    let everyone: Vec<SocketAddr> = members.iter().map(|m| m.0).collect();
    for (_, _, seeds, _, _) in &members {
        seeds.send_replace(everyone.clone());
    }
    for (_, view, _, _, _) in &mut members {
        wait_for(view, "all three alive", |v| {
            ["a", "b", "c"].iter().all(|n| state(v, n) == Some(MemberState::Alive))
        })
        .await;
    }
    for (_, _, _, stop, task) in members {
        let _ = stop.send(());
        task.await.expect("joined").expect("clean stop");
    }
}

#[tokio::test]
async fn an_isolated_speaker_takes_over_nothing_but_a_connected_one_does() {
    /// Short enough for the test to see the grace end.
    const GRACE: Option<Duration> = Some(Duration::from_millis(100));
    // Cut off: its only peer speaks with another key (as with a wrong key or a blocked port).
    let other = start_with_grace("other", 1, vec![], GRACE).await;
    let mut alone = start_with_grace("alone", 2, vec![other.addr], GRACE).await;
    // Connected: a and b see each other; "ghost" (a node whose speaker never came up) is dead
    // for them once the grace is over.
    let a = start_with_grace("a", 3, vec![], GRACE).await;
    let mut b = start_with_grace("b", 3, vec![a.addr], GRACE).await;
    wait_for(&mut b.view, "b sees a, the grace over, ghost dead", |v| {
        state(v, "a") == Some(MemberState::Alive) && !v.is_live("ghost")
    })
    .await;
    // By now alone's grace (100 ms) is long over too, and it heard from nobody.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let view = alone.view.borrow_and_update().clone();
    assert_eq!(view.members().len(), 1, "heard from nobody: {view:?}");
    assert!(view.is_live("other") && view.is_live("ghost"), "isolated: no take-over");
    // Reaching 1 of the 2 speakers it knows is no majority: not ready, and the data plane
    // takes over nothing whatever the view says.
    assert!(!view.has_quorum(), "{view:?}");
    // Even with a desired state applied, gossip health alone keeps it not ready.
    alone.metrics.set_ready();
    assert!(!alone.metrics.is_ready());
    let text = alone.metrics.readiness_text();
    assert!(text.contains("gossip reaches 1 of 2 known speakers"), "{text}");
    b.metrics.set_ready();
    assert!(b.metrics.is_ready(), "{}", b.metrics.readiness_text());
    assert!(b.view.borrow().has_quorum(), "b reaches a and itself: 2 of 2");
}

/// Polls `condition` on a member's metrics page until it holds.
async fn wait_metrics(member: &Member, what: &str, condition: impl Fn(&str) -> bool) {
    let start = Instant::now();
    while !condition(&member.metrics.encode()) {
        assert!(
            start.elapsed() < DEADLINE,
            "timed out waiting for {what}: {}",
            member.metrics.encode()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn drops(text: &str, reason: &str) -> f64 {
    let series = format!(r#"metallb_speaker_gossip_dropped_total{{reason="{reason}"}}"#);
    text.lines().find_map(|l| l.strip_prefix(&series)?.trim().parse().ok()).unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gossip_keys_rotate_without_a_partition() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (old, new) = ([1u8; 32], [2u8; 32]);
    let files = |name: &str, current: [u8; 32], others: &[(&str, [u8; 32])]| {
        let sub = dir.path().join(name);
        std::fs::create_dir_all(&sub).expect("dir");
        for entry in std::fs::read_dir(&sub).expect("list") {
            std::fs::remove_file(entry.expect("entry").path()).expect("remove");
        }
        std::fs::write(sub.join("key"), current).expect("write");
        for (suffix, key) in others {
            std::fs::write(sub.join(format!("key.{suffix}")), key).expect("write");
        }
        sub.join("key")
    };
    // Mid-rotation: a already sends with the new key, b still with the old; each accepts both.
    let a_key = files("a", new, &[("previous", old)]);
    let b_key = files("b", old, &[("next", new)]);
    let reload = |path: std::path::PathBuf| {
        move |config: &mut GossipConfig| {
            config.key_file = Some(path);
            config.key_reload_interval = Duration::from_millis(100);
        }
    };
    let ring_of = |path: &std::path::Path| KeyRing::from_file(path).expect("ring");
    let mut a =
        start_with("a", "127.0.0.1:0", vec![], ring_of(&a_key), reload(a_key.clone())).await;
    let mut b =
        start_with("b", "127.0.0.1:0", vec![a.addr], ring_of(&b_key), reload(b_key.clone())).await;
    wait_for(&mut a.view, "b alive", |v| state(v, "b") == Some(MemberState::Alive)).await;
    wait_for(&mut b.view, "a alive", |v| state(v, "a") == Some(MemberState::Alive)).await;
    // The rotation completes: both hold only the new key; reloaded without a restart.
    files("b", new, &[]);
    files("a", new, &[]);
    // Wait until b has sent with the new key for a while: a, holding only the new key now,
    // keeps seeing b alive and drops nothing for a bad MAC.
    let before = drops(&a.metrics.encode(), "bad_mac");
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(a.view.borrow().is_live("b") && b.view.borrow().is_live("a"));
    assert_eq!(state(&a.view.borrow(), "b"), Some(MemberState::Alive));
    assert_eq!(drops(&a.metrics.encode(), "bad_mac"), before, "{}", a.metrics.encode());
    // A broken ring file keeps the keys in force and is counted.
    std::fs::write(&b_key, [0u8; 3]).expect("write");
    wait_metrics(&b, "a key error", |t| t.contains("metallb_speaker_gossip_key_errors_total 1"))
        .await;
    assert_eq!(state(&b.view.borrow(), "a"), Some(MemberState::Alive));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_speaker_restarted_with_its_clock_behind_is_not_locked_out() {
    let mut a = start("a", 1, vec![]).await;
    let b = start_with("b", "127.0.0.1:0", vec![a.addr], ring(1), |_| {}).await;
    let b_addr = b.addr;
    wait_for(&mut a.view, "b alive", |v| state(v, "b") == Some(MemberState::Alive)).await;
    b.task.abort();
    wait_for(&mut a.view, "b dead", |v| state(v, "b") == Some(MemberState::Dead)).await;
    // b comes back on the same address, its clock a minute behind its previous life: a lower
    // incarnation, a lower sequence.
    let behind = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64
        - 60_000;
    let _b = start_with("b", &b_addr.to_string(), vec![a.addr], ring(1), |config| {
        config.boot_ms = Some(behind);
    })
    .await;
    wait_for(&mut a.view, "b alive again", |v| state(v, "b") == Some(MemberState::Alive)).await;
    assert_eq!(drops(&a.metrics.encode(), "replay"), 0.0, "{}", a.metrics.encode());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_datagram_replayed_to_another_member_is_dropped() {
    // A recording of a's ping to b, replayed to c by someone on the path.
    let keys = ring(1);
    let mut a = start("a", 1, vec![]).await;
    let b = start("b", 1, vec![a.addr]).await;
    let c = start("c", 1, vec![a.addr]).await;
    wait_for(&mut a.view, "b and c alive", |v| {
        state(v, "b") == Some(MemberState::Alive) && state(v, "c") == Some(MemberState::Alive)
    })
    .await;
    let envelope = metallb_speaker::gossip::codec::Envelope {
        to: b.addr,
        life: 7,
        seq: 1,
        time_ms: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_millis() as u64,
        message: metallb_speaker::gossip::membership::Message {
            from: "a".into(),
            incarnation: u64::MAX,
            body: metallb_speaker::gossip::membership::Body::Leave,
            updates: vec![],
        },
    };
    let recording = metallb_speaker::gossip::codec::seal(&keys, &envelope);
    let attacker = tokio::net::UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    attacker.send_to(&recording, c.addr).await.expect("send");
    wait_metrics(&c, "a wrong_recipient drop", |t| drops(t, "wrong_recipient") == 1.0).await;
    assert!(c.view.borrow().is_live("a"), "the replayed leave was not believed");
    let _ = b;
}
