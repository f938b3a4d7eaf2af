//! Two drivers in one process over loopback (no root needed: port 3784 is unprivileged, and
//! all of 127.0.0.0/8 is local on Linux): sessions come Up (which also shows TTL 255 is sent:
//! a driver accepts nothing else), packets leave from a port of 49152–65535, a removed or
//! shut down session takes its peer Down, a silent peer is detected, and bad datagrams are
//! counted, never fatal.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::time::Duration;

use metallb_bfd::driver::CONTROL_PORT;
use metallb_bfd::{Bfd, Diag, Packet, Role, SessionKey, SessionStatus, State, session::Params};
use tokio::sync::watch;

use crate::DEADLINE;

/// Three loopback addresses of our own: the process id keeps concurrent runs of this test
/// binary apart, `test` the tests of one run.
fn addresses(test: u8) -> (IpAddr, IpAddr, IpAddr) {
    let pid = std::process::id();
    let [_, b, c, _] = (pid << 8).to_be_bytes();
    let at = |i: u8| IpAddr::V4(Ipv4Addr::from([127, b, c, test * 4 + i]));
    (at(0), at(1), at(2))
}

/// Faster than the defaults, yet slow enough (300 ms detection) that a loaded CI machine does
/// not starve a session into a flap.
fn quick() -> Params {
    Params {
        desired_min_tx: Duration::from_millis(100),
        required_min_rx: Duration::from_millis(100),
        detect_mult: 3,
        role: Role::Active,
    }
}

async fn wait_for(
    states: &mut watch::Receiver<BTreeMap<SessionKey, SessionStatus>>,
    key: SessionKey,
    what: &str,
    condition: impl Fn(&SessionStatus) -> bool,
) -> SessionStatus {
    let waited =
        tokio::time::timeout(DEADLINE, states.wait_for(|s| s.get(&key).is_some_and(&condition)))
            .await
            .map(|r| r.map(|states| states[&key].clone()));
    match waited {
        Ok(Ok(status)) => status,
        Ok(Err(_)) => panic!("the driver stopped while waiting for {what}"),
        Err(_) => panic!("timed out waiting for {what}: {:?}", states.borrow().get(&key)),
    }
}

#[tokio::test]
async fn sessions_come_up_and_an_admin_down_takes_the_peer_down() {
    let (a, z, _) = addresses(1);
    let (left, right) = (Bfd::new(), Bfd::new());
    let ka = left.add_session(a, z, quick()).expect("session a→z");
    let kz = right.add_session(z, a, quick()).expect("session z→a");
    let (mut sa, mut sz) = (left.states(), right.states());
    // Up at the slow rate first, then both Poll Sequences bring the fast timers in.
    let up = wait_for(&mut sa, ka, "a Up at 100 ms", |s| {
        s.state == State::Up
            && s.tx_interval == Some(Duration::from_millis(100))
            && s.detection_time == Duration::from_millis(300)
    })
    .await;
    wait_for(&mut sz, kz, "z Up", |s| s.state == State::Up).await;
    assert_ne!(up.remote_discriminator, 0);
    assert!(matches!(left.add_session(a, z, quick()), Err(metallb_bfd::Error::SessionExists(..))));

    right.remove_session(kz).expect("remove");
    let down = wait_for(&mut sa, ka, "a Down", |s| s.state == State::Down).await;
    assert_eq!(
        (down.diag, down.remote_state),
        (Diag::NeighborSignaledSessionDown, State::AdminDown)
    );
    assert!(right.states().borrow().is_empty());
    let counters = left.counters();
    assert_eq!((counters.ups, counters.downs), (1, 1), "{counters:?}");
    assert!(counters.packets_in > 0 && counters.packets_out > 0, "{counters:?}");

    // Added again, the session starts over and both sides come Up again.
    let kz = right.add_session(z, a, quick()).expect("session z→a again");
    let mut sz = right.states();
    wait_for(&mut sz, kz, "z Up again", |s| s.state == State::Up).await;
    wait_for(&mut sa, ka, "a Up again", |s| s.state == State::Up).await;
    assert!(matches!(right.remove_session(ka), Err(metallb_bfd::Error::NoSession(..))));
}

/// The peer is played by hand over a plain socket: Down, then Init, then silence, as a node
/// that dies without a word.
#[tokio::test]
async fn a_silent_peer_is_detected() {
    let (a, z, _) = addresses(2);
    // The peer listens where a peer listens, so it sees what we send.
    let peer = tokio::net::UdpSocket::bind(SocketAddr::new(z, CONTROL_PORT)).await.expect("bind");
    peer.set_ttl(255).expect("ttl");
    let left = Bfd::new();
    let ka = left.add_session(a, z, quick()).expect("session a→z");
    let mut sa = left.states();
    let ours = sa.borrow()[&ka].local_discriminator;
    let mut buf = [0u8; 64];
    let (len, from) = tokio::time::timeout(DEADLINE, peer.recv_from(&mut buf))
        .await
        .expect("our first packet comes at once")
        .expect("receive");
    let first = Packet::decode(&buf[..len]).expect("a valid packet");
    assert_eq!(
        (first.state, first.my_discriminator, first.your_discriminator),
        (State::Down, ours, 0)
    );
    assert_eq!(from.ip(), a);
    assert!(metallb_bfd::driver::SOURCE_PORTS.contains(&from.port()), "source port {from}");

    let target = SocketAddr::new(a, CONTROL_PORT);
    // 250 ms: a detection time (750 ms) that a busy machine cannot miss between our two
    // packets, so the session cannot time out in Init before the second one.
    let mut packet = Packet { desired_min_tx: Duration::from_millis(250), ..peer_packet() };
    peer.send_to(&packet.encode(), target).await.expect("send Down");
    wait_for(&mut sa, ka, "a Init", |s| s.state == State::Init).await;
    packet.state = State::Init;
    packet.your_discriminator = ours;
    peer.send_to(&packet.encode(), target).await.expect("send Init");
    let up = wait_for(&mut sa, ka, "a Up", |s| s.state == State::Up).await;
    // 3 × max(our 100 ms RX, the peer's 250 ms TX).
    assert_eq!(up.detection_time, Duration::from_millis(750));
    let down = wait_for(&mut sa, ka, "a Down", |s| s.state == State::Down).await;
    assert_eq!((down.diag, down.remote_discriminator), (Diag::ControlDetectionTimeExpired, 0));
    assert_eq!(left.counters().downs, 1);
}

/// A Down packet from discriminator 9 with 40 ms intervals.
fn peer_packet() -> Packet {
    Packet::decode(&[
        0x20, 0x40, 3, 24, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0x9c, 0x40, 0, 0, 0x9c, 0x40, 0, 0, 0, 0,
    ])
    .expect("a valid Down packet")
}

#[tokio::test]
async fn bad_datagrams_are_counted_and_harmless() {
    let (a, z, stranger) = addresses(3);
    let left = Bfd::new();
    let ka = left.add_session(a, z, quick()).expect("session a→z");
    let target = SocketAddr::new(a, CONTROL_PORT);
    let sender = UdpSocket::bind(SocketAddr::new(z, 0)).expect("bind");
    let valid = peer_packet();
    let mut unknown = valid.clone();
    unknown.your_discriminator = 0x5eed;
    let ours = left.states().borrow()[&ka].local_discriminator;
    let mut misdirected = valid.clone();
    misdirected.your_discriminator = ours;
    sender.set_ttl(255).expect("ttl");
    for bytes in [vec![0u8; 3], vec![0xff; 24], unknown.encode()] {
        sender.send_to(&bytes, target).expect("send");
    }
    // A valid packet with a TTL below 255 came from further away than a direct neighbour.
    sender.set_ttl(64).expect("ttl");
    sender.send_to(&valid.encode(), target).expect("send");
    // From an address with no session: unknown with discriminator 0, and a wrong peer with ours.
    let other = UdpSocket::bind(SocketAddr::new(stranger, 0)).expect("bind");
    other.set_ttl(255).expect("ttl");
    other.send_to(&valid.encode(), target).expect("send");
    other.send_to(&misdirected.encode(), target).expect("send");
    let expected: BTreeMap<&str, u64> = [
        ("truncated", 1),
        ("version", 1),
        ("unknown_discriminator", 1),
        ("ttl_not_255", 1),
        ("no_session", 1),
        ("wrong_peer", 1),
    ]
    .into();
    let counted = tokio::time::timeout(DEADLINE, async {
        loop {
            if left.counters().invalid == expected {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    assert!(counted.await.is_ok(), "{:?}", left.counters());
    // The session is alive and well: it still answers the peer that now speaks properly.
    sender.set_ttl(255).expect("ttl");
    sender.send_to(&valid.encode(), target).expect("send");
    let mut states = left.states();
    wait_for(&mut states, ka, "a Init", |s| s.state == State::Init && s.remote_discriminator == 9)
        .await;
}

/// A graceful shutdown reaches the peer before `shutdown` returns: its session goes Down on our
/// AdminDown, with no detection time to wait out.
#[tokio::test]
async fn shutdown_says_goodbye() {
    let (a, z, _) = addresses(4);
    let (left, right) = (Bfd::new(), Bfd::new());
    let ka = left.add_session(a, z, quick()).expect("session a→z");
    let kz = right.add_session(z, a, quick()).expect("session z→a");
    let mut sa = left.states();
    wait_for(&mut sa, ka, "a Up", |s| s.state == State::Up).await;
    wait_for(&mut right.states(), kz, "z Up", |s| s.state == State::Up).await;
    right.shutdown().await;
    let down = wait_for(&mut sa, ka, "a Down", |s| s.state == State::Down).await;
    assert_eq!(
        (down.diag, down.remote_state),
        (Diag::NeighborSignaledSessionDown, State::AdminDown)
    );
}

#[test]
fn without_a_runtime_adding_is_an_error_not_a_panic() {
    let (a, z, _) = addresses(5);
    let bfd = Bfd::new();
    assert!(matches!(bfd.add_session(a, z, quick()), Err(metallb_bfd::Error::NoRuntime)));
    let v6: IpAddr = "2001:db8::1".parse().expect("address");
    assert!(matches!(
        bfd.add_session(a, v6, quick()),
        Err(metallb_bfd::Error::MixedFamilies { .. })
    ));
    let zero = Params { detect_mult: 0, ..quick() };
    assert!(matches!(bfd.add_session(a, z, zero), Err(metallb_bfd::Error::InvalidParams(_))));
    assert!(bfd.states().borrow().is_empty());
}

#[tokio::test]
async fn an_address_that_is_not_ours_is_an_error() {
    let bfd = Bfd::new();
    let not_local: IpAddr = "192.0.2.77".parse().expect("address");
    let peer: IpAddr = "192.0.2.78".parse().expect("address");
    let error = bfd.add_session(not_local, peer, quick()).expect_err("cannot bind");
    assert!(matches!(error, metallb_bfd::Error::Socket { .. }), "{error}");
    assert!(bfd.states().borrow().is_empty());
}
