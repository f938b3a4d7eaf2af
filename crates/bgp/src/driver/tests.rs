//! The driver against scripted peers on loopback: no root needed, every wait bounded.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::*;
use crate::wire::{AfiSafi, Capability, Codec, Message, Open, decode, encode, frame_length};

const FOUR: Codec = Codec { four_octet_as: true };
/// Bound on every wait; generous because CI machines are shared.
const WAIT: Duration = Duration::from_secs(20);

fn peer(name: &str, port: u16) -> PeerConfig {
    PeerConfig {
        name: name.into(),
        address: IpAddr::V4(Ipv4Addr::LOCALHOST),
        port,
        peer_asn: 64500,
        my_asn: 64512,
        router_id: Ipv4Addr::new(192, 0, 2, 2),
        hold_time: 90,
        source_address: None,
        password: None,
        graceful_restart_time: Some(120),
        next_hop_v4: None,
        next_hop_v6: None,
    }
}

async fn read_message(s: &mut TcpStream, buf: &mut Vec<u8>) -> Message {
    tokio::time::timeout(WAIT, async {
        loop {
            if let Some(len) = frame_length(buf).unwrap() {
                let frame: Vec<u8> = buf.drain(..len).collect();
                return decode(&frame, FOUR).or_else(|_| decode(&frame, Codec::default())).unwrap();
            }
            let mut chunk = [0u8; 4096];
            let n = s.read(&mut chunk).await.unwrap();
            assert!(n > 0, "speaker closed the connection");
            buf.extend_from_slice(&chunk[..n]);
        }
    })
    .await
    .expect("no message from the speaker")
}

/// Accepts one connection and completes the OPEN exchange as AS 64500.
async fn accept_and_open(l: &TcpListener) -> (TcpStream, Vec<u8>, Open) {
    let (mut s, _) = tokio::time::timeout(WAIT, l.accept()).await.expect("no connection").unwrap();
    let mut buf = Vec::new();
    let Message::Open(open) = read_message(&mut s, &mut buf).await else { panic!("no OPEN") };
    let ours = Open {
        version: 4,
        my_as: 64500,
        hold_time: 90,
        bgp_id: Ipv4Addr::new(192, 0, 2, 1),
        capabilities: vec![
            Capability::MultiProtocol(AfiSafi::IPV4_UNICAST),
            Capability::FourOctetAs(64500),
        ],
    };
    s.write_all(&encode(&Message::Open(ours), FOUR).unwrap()).await.unwrap();
    s.write_all(&encode(&Message::Keepalive, FOUR).unwrap()).await.unwrap();
    assert_eq!(read_message(&mut s, &mut buf).await, Message::Keepalive);
    (s, buf, open)
}

fn desired(peers: &[PeerConfig], prefixes: &[&str]) -> Desired {
    let names: BTreeMap<String, RouteAttrs> =
        peers.iter().map(|p| (p.name.clone(), RouteAttrs::default())).collect();
    Desired {
        peers: peers.iter().map(|p| (p.name.clone(), p.clone())).collect(),
        routes: prefixes.iter().map(|p| (p.parse().unwrap(), names.clone())).collect(),
    }
}

async fn wait_state(speaker: &Speaker, name: &str, state: State) {
    let mut w = speaker.watch(name).unwrap();
    tokio::time::timeout(WAIT, w.wait_for(|s| s.state == state))
        .await
        .expect("state not reached")
        .unwrap();
}

#[tokio::test]
async fn announces_updates_withdraws_and_shuts_down_gracefully() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let p = peer("r1", l.local_addr().unwrap().port());
    let mut speaker = Speaker::new(true);
    let report = speaker.apply(&desired(std::slice::from_ref(&p), &["198.51.100.10/32"]));
    assert_eq!(report.started, vec!["r1".to_string()]);
    let (mut s, mut buf, open) = accept_and_open(&l).await;
    assert!(
        open.capabilities
            .iter()
            .any(|c| matches!(c, Capability::GracefulRestart(g) if g.restart_state))
    );
    let Message::Update(u) = read_message(&mut s, &mut buf).await else { panic!() };
    assert_eq!(u.nlri, vec!["198.51.100.10/32".parse().unwrap()]);
    let Message::Update(eor) = read_message(&mut s, &mut buf).await else { panic!() };
    assert_eq!(eor.end_of_rib_family(), Some(AfiSafi::IPV4_UNICAST));
    wait_state(&speaker, "r1", State::Established).await;

    speaker.apply(&desired(std::slice::from_ref(&p), &["198.51.100.11/32"]));
    let Message::Update(w) = read_message(&mut s, &mut buf).await else { panic!() };
    assert_eq!(w.withdrawn, vec!["198.51.100.10/32".parse().unwrap()]);
    let Message::Update(a) = read_message(&mut s, &mut buf).await else { panic!() };
    assert_eq!(a.nlri, vec!["198.51.100.11/32".parse().unwrap()]);
    assert_eq!(speaker.status()["r1"].prefixes_sent, 1);

    let shutdown = tokio::spawn(speaker.shutdown(Duration::from_millis(200)));
    let Message::Update(drained) = read_message(&mut s, &mut buf).await else { panic!() };
    assert!(
        drained.attributes.contains(&crate::wire::PathAttribute::Communities(vec![
            crate::wire::GRACEFUL_SHUTDOWN
        ]))
    );
    let Message::Notification(n) = read_message(&mut s, &mut buf).await else { panic!() };
    assert_eq!((n.code, n.subcode), (6, 2));
    tokio::time::timeout(WAIT, shutdown).await.unwrap().unwrap();
}

#[tokio::test]
async fn garbage_from_one_peer_resets_only_its_session_and_it_reconnects() {
    let l1 = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let l2 = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let p1 = peer("bad", l1.local_addr().unwrap().port());
    let p2 = peer("good", l2.local_addr().unwrap().port());
    let mut speaker = Speaker::new(false);
    speaker.apply(&desired(&[p1, p2], &["198.51.100.10/32"]));
    let (mut bad, mut bad_buf, _) = accept_and_open(&l1).await;
    let (_good, _, _) = accept_and_open(&l2).await;
    wait_state(&speaker, "bad", State::Established).await;
    wait_state(&speaker, "good", State::Established).await;
    bad.write_all(&[0x42; 64]).await.unwrap();
    // The speaker answers with Message Header Error / Connection Not Synchronized and closes.
    let n = loop {
        if let Message::Notification(n) = read_message(&mut bad, &mut bad_buf).await {
            break n;
        }
    };
    assert_eq!((n.code, n.subcode), (1, 1));
    let (_again, _, _) = accept_and_open(&l1).await;
    wait_state(&speaker, "bad", State::Established).await;
    let status = speaker.status();
    assert_eq!(status["bad"].flaps, 1);
    assert_eq!((status["good"].state, status["good"].flaps), (State::Established, 0));
}

#[tokio::test]
async fn force_down_closes_without_notification_and_reconnects() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let p = peer("r1", l.local_addr().unwrap().port());
    let mut speaker = Speaker::new(false);
    speaker.apply(&desired(&[p], &[]));
    let (mut s, mut buf, _) = accept_and_open(&l).await;
    wait_state(&speaker, "r1", State::Established).await;
    assert!(speaker.force_down("r1"));
    // Everything left on the old connection is the initial End-of-RIB; then it closes.
    let mut rest = Vec::new();
    tokio::time::timeout(WAIT, s.read_to_end(&mut rest)).await.unwrap().unwrap();
    buf.extend(rest);
    while let Some(len) = frame_length(&buf).unwrap() {
        let m = decode(&buf.drain(..len).collect::<Vec<_>>(), FOUR).unwrap();
        assert!(matches!(m, Message::Update(ref u) if u.end_of_rib_family().is_some()), "{m:?}");
    }
    let (_again, _, _) = accept_and_open(&l).await;
    wait_state(&speaker, "r1", State::Established).await;
}

#[tokio::test]
async fn invalid_peers_and_unknown_route_peers_are_reported_not_fatal() {
    let mut speaker = Speaker::new(false);
    let bad = PeerConfig { hold_time: 2, ..peer("bad", 1) };
    let mut d = desired(&[bad], &[]);
    d.routes.insert(
        "198.51.100.1/32".parse().unwrap(),
        [("nobody".to_string(), RouteAttrs::default())].into(),
    );
    let report = speaker.apply(&d);
    assert_eq!(report.invalid.len(), 1);
    assert!(report.invalid[0].1.contains("hold time 2"), "{report:?}");
    assert_eq!(report.unknown_peer_routes, 1);
    assert!(report.started.is_empty());
    assert!(speaker.status().is_empty());
    speaker.shutdown(Duration::ZERO).await;
}

#[tokio::test]
async fn a_changed_peer_is_restarted_and_a_removed_one_stopped_with_cease() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let p = peer("r1", l.local_addr().unwrap().port());
    let mut speaker = Speaker::new(false);
    speaker.apply(&desired(std::slice::from_ref(&p), &[]));
    let (mut s, mut buf, _) = accept_and_open(&l).await;
    wait_state(&speaker, "r1", State::Established).await;
    let changed = PeerConfig { hold_time: 30, ..p };
    let report = speaker.apply(&desired(std::slice::from_ref(&changed), &[]));
    assert_eq!(report.restarted, vec!["r1".to_string()]);
    let n = loop {
        if let Message::Notification(n) = read_message(&mut s, &mut buf).await {
            break n;
        }
    };
    assert_eq!((n.code, n.subcode), (6, 6), "Cease / Other Configuration Change");
    let (mut s, mut buf, open) = accept_and_open(&l).await;
    assert_eq!(open.hold_time, 30);
    let report = speaker.apply(&Desired::default());
    assert_eq!(report.stopped, vec!["r1".to_string()]);
    let n = loop {
        if let Message::Notification(n) = read_message(&mut s, &mut buf).await {
            break n;
        }
    };
    assert_eq!((n.code, n.subcode), (6, 3), "Cease / Peer De-configured");
}
