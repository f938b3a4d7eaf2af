//! Gossip drivers in one process over loopback UDP, real sockets and real time, default
//! tuning: join, failure detection, graceful leave, a wrong key.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

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

/// A member; `grace` replaces the default join grace (5 s) where a test must see it end.
async fn start_with_grace(
    name: &str,
    key: u8,
    peers: Vec<SocketAddr>,
    grace: Option<Duration>,
) -> Member {
    let key = Key::new(vec![key; 32]).expect("32 bytes");
    let bind: SocketAddr = "127.0.0.1:0".parse().expect("addr");
    let metrics = Arc::new(Metrics::new());
    let mut config = GossipConfig::new(name.into(), bind, peers, key);
    if let Some(grace) = grace {
        config.join_grace = grace;
    }
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
    let key = || Key::new(vec![3; 32]).expect("32 bytes");
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
}
