//! Every timer and error path of the session, with a hand-made clock and a scripted peer.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use ipnet::IpNet;

use super::*;
use crate::wire::{MpUnreach, PathAttribute, RouteRefresh, decode, encode};

const PEER_AS: u32 = 64500;
const MY_AS: u32 = 64512;
const PEER_ID: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const MY_ID: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
const FOUR: Codec = Codec { four_octet_as: true };

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn local() -> SocketAddr {
    "192.0.2.2:40000".parse().unwrap()
}

fn config() -> SessionConfig {
    SessionConfig::new(MY_AS, PEER_AS, MY_ID)
}

fn peer_open(hold_time: u16) -> Open {
    Open {
        version: 4,
        my_as: PEER_AS as u16,
        hold_time,
        bgp_id: PEER_ID,
        capabilities: vec![
            Capability::MultiProtocol(AfiSafi::IPV4_UNICAST),
            Capability::MultiProtocol(AfiSafi::IPV6_UNICAST),
            Capability::RouteRefresh,
            Capability::FourOctetAs(PEER_AS),
        ],
    }
}

fn bytes(m: &Message) -> Vec<u8> {
    encode(m, FOUR).unwrap()
}

/// Everything the session wants sent, decoded.
fn sent(s: &mut Session) -> Vec<Message> {
    std::iter::from_fn(|| s.poll_transmit())
        .map(|b| decode(&b, FOUR).or_else(|_| decode(&b, Codec::default())).unwrap())
        .collect()
}

fn events(s: &mut Session) -> Vec<Event> {
    std::iter::from_fn(|| s.poll_event()).collect()
}

/// A session taken to OpenSent, outputs drained.
fn open_sent(cfg: SessionConfig, t0: Instant) -> Session {
    let mut s = Session::new(cfg, t0).unwrap();
    s.start(t0);
    assert_eq!(events(&mut s), vec![Event::Connect]);
    s.handle_connected(t0, local());
    assert_eq!(s.state(), State::OpenSent);
    let [Message::Open(_)] = sent(&mut s).as_slice() else { panic!("no OPEN") };
    s
}

/// A session taken to Established with the peer's hold time, outputs drained.
fn established(cfg: SessionConfig, hold: u16, t0: Instant) -> Session {
    let mut s = open_sent(cfg, t0);
    s.handle_input(t0, &bytes(&Message::Open(peer_open(hold))));
    assert_eq!(s.state(), State::OpenConfirm);
    s.handle_input(t0, &bytes(&Message::Keepalive));
    assert_eq!(s.state(), State::Established);
    sent(&mut s);
    events(&mut s);
    s
}

fn notification_sent(s: &mut Session) -> Option<Notification> {
    sent(s).into_iter().find_map(|m| match m {
        Message::Notification(n) => Some(n),
        _ => None,
    })
}

#[test]
fn config_validation() {
    let cases: Vec<(&str, SessionConfig, bool)> = vec![
        ("defaults", config(), true),
        ("hold 0", SessionConfig { hold_time: 0, ..config() }, true),
        ("hold 1", SessionConfig { hold_time: 1, ..config() }, false),
        ("hold 2", SessionConfig { hold_time: 2, ..config() }, false),
        ("hold 3", SessionConfig { hold_time: 3, ..config() }, true),
        ("router id 0", SessionConfig { router_id: Ipv4Addr::UNSPECIFIED, ..config() }, false),
        ("restart time 4096", SessionConfig { graceful_restart: Some(4096), ..config() }, false),
        (
            "retry max < min",
            SessionConfig { retry_max: Duration::from_millis(10), ..config() },
            false,
        ),
    ];
    for (case, cfg, ok) in cases {
        assert_eq!(cfg.validate().is_ok(), ok, "{case}");
    }
}

#[test]
fn our_open_carries_the_capabilities() {
    let t0 = Instant::now();
    let cfg = SessionConfig {
        my_as: 4_200_000_000,
        graceful_restart: Some(120),
        restarted: true,
        ..config()
    };
    let mut s = Session::new(cfg, t0).unwrap();
    s.start(t0);
    s.handle_connected(t0, local());
    let Some(Message::Open(open)) = sent(&mut s).pop() else { panic!("no OPEN") };
    assert_eq!(open.my_as, AS_TRANS, "a 4-octet AS goes in the capability (RFC 6793 §4.1)");
    assert_eq!(open.hold_time, 90);
    assert_eq!(open.asn(), 4_200_000_000);
    assert!(open.capabilities.contains(&Capability::RouteRefresh));
    assert!(open.capabilities.contains(&Capability::MultiProtocol(AfiSafi::IPV6_UNICAST)));
    assert!(open.capabilities.contains(&Capability::GracefulRestart(GracefulRestart {
        restart_state: true,
        restart_time: 120,
        families: vec![(AfiSafi::IPV4_UNICAST, true), (AfiSafi::IPV6_UNICAST, true)],
    })));
}

#[test]
fn restart_state_bit_is_cleared_once_a_session_came_up() {
    let t0 = Instant::now();
    let cfg = SessionConfig { graceful_restart: Some(120), restarted: true, ..config() };
    let mut s = established(cfg, 90, t0);
    s.handle_closed(t0);
    s.handle_timeout(t0 + secs(2));
    assert_eq!(events(&mut s).last(), Some(&Event::Connect));
    s.handle_connected(t0 + secs(2), local());
    let Some(Message::Open(open)) = sent(&mut s).pop() else { panic!("no OPEN") };
    assert!(
        open.capabilities
            .iter()
            .any(|c| matches!(c, Capability::GracefulRestart(g) if !g.restart_state))
    );
}

#[test]
fn hold_time_negotiation_and_keepalives() {
    // (ours, peer's, negotiated, keepalive interval)
    let cases: [(u16, u16, u16, Option<u64>); 5] = [
        (90, 90, 90, Some(30)),
        (90, 30, 30, Some(10)),
        (9, 240, 9, Some(3)),
        (90, 0, 0, None),
        (0, 90, 0, None),
    ];
    for (ours, theirs, negotiated, keepalive) in cases {
        let t0 = Instant::now();
        let mut s = established(SessionConfig { hold_time: ours, ..config() }, theirs, t0);
        assert_eq!(s.negotiated().unwrap().hold_time, negotiated);
        match keepalive {
            Some(k) => {
                assert_eq!(
                    s.poll_timeout(),
                    Some(t0 + secs(k)),
                    "({ours}, {theirs}) keepalive first"
                );
                s.handle_timeout(t0 + secs(k));
                assert_eq!(sent(&mut s), vec![Message::Keepalive]);
                // The hold timer runs from the peer's last KEEPALIVE: nothing more arrives.
                s.handle_timeout(t0 + secs(u64::from(negotiated)) - Duration::from_millis(1));
                assert_eq!(s.state(), State::Established);
                s.handle_timeout(t0 + secs(u64::from(negotiated)));
                assert_eq!(s.state(), State::Active, "({ours}, {theirs}) hold expiry");
                assert_eq!(
                    notification_sent(&mut s),
                    Some(Notification::new(code::HOLD_TIMER_EXPIRED, 0))
                );
                assert_eq!(s.stats().flaps, 1);
            }
            None => {
                assert_eq!(s.poll_timeout(), None, "hold 0: no keepalives, no hold timer");
                s.handle_timeout(t0 + secs(100_000));
                assert_eq!(s.state(), State::Established);
                assert!(sent(&mut s).is_empty());
            }
        }
    }
}

#[test]
fn keepalive_and_update_from_the_peer_restart_the_hold_timer() {
    let t0 = Instant::now();
    let mut s = established(config(), 90, t0);
    for (at, m) in [
        (60, Message::Keepalive),
        (120, Message::Update(Update::end_of_rib(AfiSafi::IPV4_UNICAST))),
    ] {
        s.handle_timeout(t0 + secs(at));
        s.handle_input(t0 + secs(at), &bytes(&m));
    }
    s.handle_timeout(t0 + secs(209));
    assert_eq!(s.state(), State::Established);
    s.handle_timeout(t0 + secs(210));
    assert_eq!(s.state(), State::Active);
    assert_eq!(s.stats().updates_received, 1);
}

#[test]
fn open_sent_hold_timer_is_four_minutes() {
    let t0 = Instant::now();
    let mut s = open_sent(config(), t0);
    assert_eq!(s.poll_timeout(), Some(t0 + secs(240)));
    s.handle_timeout(t0 + secs(240));
    assert_eq!(notification_sent(&mut s), Some(Notification::new(code::HOLD_TIMER_EXPIRED, 0)));
    assert_eq!(s.state(), State::Active);
    assert_eq!(s.stats().flaps, 0, "never established: not a flap");
}

#[test]
fn bad_opens_get_the_right_notification() {
    let open = peer_open(90);
    let caps_with_as = |asn: u32| {
        let mut o = open.clone();
        o.capabilities.retain(|c| !matches!(c, Capability::FourOctetAs(_)));
        o.capabilities.push(Capability::FourOctetAs(asn));
        o
    };
    type Case = (&'static str, SessionConfig, Open, (u8, u8), Vec<u8>);
    let cases: Vec<Case> = vec![
        ("version 3", config(), Open { version: 3, ..open.clone() }, (2, 1), vec![0, 4]),
        (
            "wrong AS in the 2-octet field",
            config(),
            Open { my_as: 64501, capabilities: vec![], ..open.clone() },
            (2, 2),
            vec![],
        ),
        ("wrong AS in the capability", config(), caps_with_as(64501), (2, 2), vec![]),
        ("hold time 1", config(), Open { hold_time: 1, ..open.clone() }, (2, 6), vec![]),
        ("hold time 2", config(), Open { hold_time: 2, ..open.clone() }, (2, 6), vec![]),
        (
            "identifier 0",
            config(),
            Open { bgp_id: Ipv4Addr::UNSPECIFIED, ..open.clone() },
            (2, 3),
            vec![],
        ),
        (
            "our identifier on iBGP",
            SessionConfig { my_as: PEER_AS, ..config() },
            Open { bgp_id: MY_ID, ..open.clone() },
            (2, 3),
            vec![],
        ),
    ];
    for (case, cfg, open, (c, sc), data) in cases {
        let t0 = Instant::now();
        let mut s = open_sent(cfg, t0);
        s.handle_input(t0, &bytes(&Message::Open(open)));
        let want = Notification { code: c, subcode: sc, data };
        assert_eq!(notification_sent(&mut s), Some(want.clone()), "{case}");
        assert_eq!(s.state(), State::Active, "{case}");
        let down = Event::Down(DownReason::NotificationSent(want));
        assert_eq!(events(&mut s), vec![Event::Close, down], "{case}");
    }
}

#[test]
fn our_identifier_on_ebgp_is_accepted() {
    let t0 = Instant::now();
    let mut s = open_sent(config(), t0);
    s.handle_input(t0, &bytes(&Message::Open(Open { bgp_id: MY_ID, ..peer_open(90) })));
    assert_eq!(s.state(), State::OpenConfirm);
}

#[test]
fn unsupported_optional_parameter_and_garbage() {
    let mut with_param = bytes(&Message::Open(Open { capabilities: vec![], ..peer_open(90) }));
    // Replace the empty parameter list with parameter type 1 (deprecated authentication).
    with_param[28] = 3;
    with_param.extend_from_slice(&[1, 1, 0]);
    with_param[17] = with_param.len() as u8;
    let mut garbage = vec![0u8; 40];
    garbage[0] = 0x42;
    let cases: Vec<(&str, Vec<u8>, (u8, u8))> =
        vec![("optional parameter 1", with_param, (2, 4)), ("not a BGP header", garbage, (1, 1))];
    for (case, input, (c, sc)) in cases {
        let t0 = Instant::now();
        let mut s = open_sent(config(), t0);
        s.handle_input(t0, &input);
        let n = notification_sent(&mut s).expect(case);
        assert_eq!((n.code, n.subcode), (c, sc), "{case}");
        assert_eq!(s.state(), State::Active);
    }
}

#[test]
fn unexpected_messages_are_fsm_errors() {
    let update = Message::Update(Update::end_of_rib(AfiSafi::IPV4_UNICAST));
    let cases: Vec<(&str, State, Message, u8)> = vec![
        ("keepalive in OpenSent", State::OpenSent, Message::Keepalive, code::fsm::IN_OPEN_SENT),
        ("update in OpenSent", State::OpenSent, update.clone(), code::fsm::IN_OPEN_SENT),
        ("update in OpenConfirm", State::OpenConfirm, update, code::fsm::IN_OPEN_CONFIRM),
        (
            "open in OpenConfirm",
            State::OpenConfirm,
            Message::Open(peer_open(90)),
            code::fsm::IN_OPEN_CONFIRM,
        ),
        (
            "open in Established",
            State::Established,
            Message::Open(peer_open(90)),
            code::fsm::IN_ESTABLISHED,
        ),
    ];
    for (case, state, m, subcode) in cases {
        let t0 = Instant::now();
        let mut s = open_sent(config(), t0);
        if state >= State::OpenConfirm {
            s.handle_input(t0, &bytes(&Message::Open(peer_open(90))));
        }
        if state == State::Established {
            s.handle_input(t0, &bytes(&Message::Keepalive));
        }
        assert_eq!(s.state(), state, "{case}");
        sent(&mut s);
        s.handle_input(t0, &bytes(&m));
        assert_eq!(
            notification_sent(&mut s),
            Some(Notification::new(code::FSM, subcode)),
            "{case}"
        );
    }
}

#[test]
fn received_updates_are_validated_and_counted_never_fatal_when_rfc_7606_allows() {
    let t0 = Instant::now();
    let mut s = established(config(), 90, t0);
    // An UPDATE with NLRI but no attributes: missing ORIGIN, treat-as-withdraw.
    let mut taw = bytes(&Message::Update(Update::default()));
    taw.extend_from_slice(&[32, 198, 51, 100, 1]);
    taw[17] += 5;
    s.handle_input(t0, &taw);
    assert_eq!(s.state(), State::Established);
    assert_eq!(s.stats().updates_treated_as_withdraw, 1);
    assert!(sent(&mut s).is_empty(), "no NOTIFICATION for treat-as-withdraw");
    // A prefix of length 33: session reset with Invalid Network Field.
    let mut bad = bytes(&Message::Update(Update::default()));
    bad.extend_from_slice(&[33, 198, 51, 100, 1, 0]);
    bad[17] += 6;
    s.handle_input(t0, &bad);
    assert_eq!(notification_sent(&mut s), Some(Notification::new(3, 10)));
    assert_eq!(s.state(), State::Active);
}

#[test]
fn messages_split_and_joined_across_reads() {
    let t0 = Instant::now();
    let mut s = open_sent(config(), t0);
    let mut stream = bytes(&Message::Open(peer_open(90)));
    stream.extend(bytes(&Message::Keepalive));
    stream.extend(bytes(&Message::Keepalive));
    for chunk in stream.chunks(7) {
        s.handle_input(t0, chunk);
    }
    assert_eq!(s.state(), State::Established);
}

fn routes(prefixes: &[&str]) -> BTreeMap<IpNet, RouteAttrs> {
    prefixes.iter().map(|p| (p.parse().unwrap(), RouteAttrs::default())).collect()
}

fn updates(msgs: Vec<Message>) -> Vec<Update> {
    msgs.into_iter()
        .filter_map(|m| match m {
            Message::Update(u) => Some(u),
            _ => None,
        })
        .collect()
}

#[test]
fn initial_table_then_end_of_rib_per_family_then_differences() {
    let t0 = Instant::now();
    let mut s = open_sent(config(), t0);
    s.set_routes(t0, routes(&["198.51.100.10/32", "198.51.100.11/32"]));
    assert!(sent(&mut s).is_empty(), "nothing before Established");
    s.handle_input(t0, &bytes(&Message::Open(peer_open(90))));
    s.handle_input(t0, &bytes(&Message::Keepalive));
    let u = updates(sent(&mut s));
    assert_eq!(u.len(), 3, "{u:?}");
    assert_eq!(u[0].nlri.len(), 2);
    assert_eq!(u[1].end_of_rib_family(), Some(AfiSafi::IPV4_UNICAST));
    assert_eq!(u[2].end_of_rib_family(), Some(AfiSafi::IPV6_UNICAST));
    assert_eq!(s.prefixes_sent(), 2);
    s.set_routes(t0, routes(&["198.51.100.10/32"]));
    let u = updates(sent(&mut s));
    assert_eq!(
        u,
        vec![Update { withdrawn: vec!["198.51.100.11/32".parse().unwrap()], ..Update::default() }]
    );
    assert_eq!(s.stats().updates_sent, 4);
}

#[test]
fn peer_without_ipv6_gets_no_ipv6_routes_and_no_ipv6_end_of_rib() {
    let t0 = Instant::now();
    let mut s = open_sent(config(), t0);
    s.set_routes(t0, routes(&["198.51.100.10/32", "2001:db8::10/128"]));
    let mut open = peer_open(90);
    open.capabilities.retain(|c| *c != Capability::MultiProtocol(AfiSafi::IPV6_UNICAST));
    s.handle_input(t0, &bytes(&Message::Open(open)));
    s.handle_input(t0, &bytes(&Message::Keepalive));
    let u = updates(sent(&mut s));
    assert_eq!(u.len(), 2);
    assert_eq!(s.stats().unexportable, 1);
    assert!(!u.iter().any(|u| u.attributes.iter().any(|a| matches!(
        a,
        PathAttribute::MpUnreach(MpUnreach { family: AfiSafi::IPV6_UNICAST, .. })
    ))));
}

#[test]
fn route_refresh_resends_the_family() {
    let t0 = Instant::now();
    // The session runs over IPv4, so IPv6 routes need a configured IPv6 next hop.
    let cfg = SessionConfig { next_hop_v6: Some("2001:db8::2".parse().unwrap()), ..config() };
    let mut s = established(cfg, 90, t0);
    s.set_routes(t0, routes(&["198.51.100.10/32", "2001:db8::10/128"]));
    sent(&mut s);
    let rr = |family, subtype| bytes(&Message::RouteRefresh(RouteRefresh { family, subtype }));
    s.handle_input(t0, &rr(AfiSafi::IPV6_UNICAST, 0));
    let u = updates(sent(&mut s));
    assert_eq!(u.len(), 1);
    assert!(matches!(&u[0].attributes[..], [.., PathAttribute::MpReach(r)] if r.nlri.len() == 1));
    // Unnegotiated families and enhanced-refresh subtypes are ignored.
    s.handle_input(t0, &rr(AfiSafi { afi: 1, safi: 128 }, 0));
    s.handle_input(t0, &rr(AfiSafi::IPV4_UNICAST, 1));
    assert!(sent(&mut s).is_empty());
    assert_eq!(s.stats().route_refreshes, 1);
    assert_eq!(s.state(), State::Established);
}

#[test]
fn drain_resends_with_graceful_shutdown_then_stop_sends_cease() {
    let t0 = Instant::now();
    let mut s = established(SessionConfig { my_as: PEER_AS, ..config() }, 90, t0);
    s.set_routes(t0, routes(&["198.51.100.10/32"]));
    sent(&mut s);
    s.drain(t0, true);
    let u = updates(sent(&mut s));
    assert_eq!(u.len(), 1);
    assert!(u[0].attributes.contains(&PathAttribute::LocalPref(0)));
    assert!(
        u[0].attributes.contains(&PathAttribute::Communities(vec![crate::wire::GRACEFUL_SHUTDOWN]))
    );
    s.drain(t0, true);
    assert!(sent(&mut s).is_empty(), "draining twice sends nothing");
    events(&mut s);
    s.stop(t0 + secs(5), code::cease::ADMINISTRATIVE_SHUTDOWN, "node drained");
    let mut data = vec![12];
    data.extend_from_slice(b"node drained");
    assert_eq!(notification_sent(&mut s), Some(Notification { code: 6, subcode: 2, data }));
    assert_eq!(s.state(), State::Idle);
    assert_eq!(s.poll_timeout(), None, "stopped: no reconnect");
    assert_eq!(events(&mut s)[0], Event::Close);
}

#[test]
fn reconnect_backoff_doubles_is_capped_and_jittered_deterministically() {
    let t0 = Instant::now();
    let cfg = SessionConfig { jitter_seed: 7, ..config() };
    let mut s = Session::new(cfg.clone(), t0).unwrap();
    s.start(t0);
    let mut now = t0;
    let mut delays = Vec::new();
    for _ in 0..8 {
        assert_eq!(events(&mut s), vec![Event::Connect]);
        s.handle_connect_failed(now);
        assert_eq!(events(&mut s), vec![Event::Down(DownReason::ConnectFailed)]);
        assert_eq!(s.state(), State::Active);
        let at = s.poll_timeout().unwrap();
        delays.push(at - now);
        s.handle_timeout(at);
        now = at;
    }
    for (i, d) in delays.iter().enumerate() {
        let base = secs(1 << i.min(5)).min(secs(30));
        assert!(*d <= base && *d >= base.mul_f64(0.75), "attempt {i}: {d:?} vs {base:?}");
    }
    // The same seed gives the same delays; the driver seeds each peer differently.
    let mut again = Session::new(cfg, t0).unwrap();
    again.start(t0);
    again.handle_connect_failed(t0);
    assert_eq!(again.poll_timeout().unwrap() - t0, delays[0]);
}

#[test]
fn connect_timeout_aborts_the_attempt() {
    let t0 = Instant::now();
    let mut s = Session::new(config(), t0).unwrap();
    s.start(t0);
    events(&mut s);
    assert_eq!(s.poll_timeout(), Some(t0 + secs(5)));
    s.handle_timeout(t0 + secs(5));
    assert_eq!(events(&mut s), vec![Event::Close, Event::Down(DownReason::ConnectFailed)]);
    assert_eq!(s.state(), State::Active);
}

#[test]
fn success_resets_the_backoff() {
    let t0 = Instant::now();
    let mut s = Session::new(config(), t0).unwrap();
    s.start(t0);
    for _ in 0..4 {
        s.handle_connect_failed(t0);
        s.handle_timeout(s.poll_timeout().unwrap());
    }
    s.handle_connected(t0, local());
    s.handle_input(t0, &bytes(&Message::Open(peer_open(90))));
    s.handle_input(t0, &bytes(&Message::Keepalive));
    s.handle_closed(t0);
    assert!(s.poll_timeout().unwrap() - t0 <= secs(1), "first retry after an Established session");
}

#[test]
fn notification_from_the_peer_and_close_and_force_down() {
    type Case = (&'static str, fn(&mut Session, Instant), DownReason);
    let cases: Vec<Case> = vec![
        (
            "notification",
            |s, t| s.handle_input(t, &bytes(&Message::Notification(Notification::new(6, 4)))),
            DownReason::NotificationReceived(Notification::new(6, 4)),
        ),
        ("tcp closed", |s, t| s.handle_closed(t), DownReason::ConnectionClosed),
        ("bfd down", |s, t| s.force_down(t), DownReason::Forced),
    ];
    for (case, input, reason) in cases {
        let t0 = Instant::now();
        let mut s = established(config(), 90, t0);
        s.set_routes(t0, routes(&["198.51.100.10/32"]));
        sent(&mut s);
        input(&mut s, t0);
        assert_eq!(events(&mut s), vec![Event::Close, Event::Down(reason.clone())], "{case}");
        assert!(sent(&mut s).is_empty(), "{case}: nothing sent to a peer that is gone");
        assert_eq!(
            (s.state(), s.prefixes_sent(), s.stats().flaps),
            (State::Active, 0, 1),
            "{case}"
        );
        assert_eq!(s.stats().last_error.as_deref(), Some(reason.to_string().as_str()));
        // It comes back by itself and re-sends the table.
        s.handle_timeout(s.poll_timeout().unwrap());
        assert_eq!(events(&mut s), vec![Event::Connect], "{case}");
    }
}

#[test]
fn stop_before_a_connection_is_quiet() {
    let t0 = Instant::now();
    let mut s = Session::new(config(), t0).unwrap();
    s.start(t0);
    events(&mut s);
    s.stop(t0, code::cease::PEER_DECONFIGURED, "");
    assert_eq!(events(&mut s), vec![Event::Close]);
    assert!(sent(&mut s).is_empty());
    assert_eq!((s.state(), s.poll_timeout()), (State::Idle, None));
    // Late inputs from the driver change nothing.
    s.handle_connected(t0, local());
    s.handle_input(t0, &bytes(&Message::Keepalive));
    assert_eq!(s.state(), State::Idle);
}

#[test]
fn a_peer_without_four_octet_as_gets_as_trans_and_as4_path() {
    let t0 = Instant::now();
    let cfg = SessionConfig { my_as: 4_200_000_000, ..config() };
    let mut s = open_sent(cfg, t0);
    let mut open = peer_open(90);
    open.capabilities.retain(|c| !matches!(c, Capability::FourOctetAs(_)));
    s.handle_input(t0, &encode(&Message::Open(open), Codec::default()).unwrap());
    s.handle_input(t0, &encode(&Message::Keepalive, Codec::default()).unwrap());
    assert_eq!(s.state(), State::Established);
    assert_eq!(s.negotiated().unwrap().codec, Codec { four_octet_as: false });
    while s.poll_transmit().is_some() {}
    s.set_routes(t0, routes(&["198.51.100.10/32"]));
    let bytes = s.poll_transmit().expect("an UPDATE");
    // RFC 6793 §4.2.2: AS_TRANS in the 2-octet AS_PATH, the real AS in AS4_PATH.
    let Message::Update(u) = decode(&bytes, Codec::default()).unwrap() else { panic!() };
    assert!(
        u.attributes
            .contains(&PathAttribute::AsPath(vec![crate::wire::AsSegment::Sequence(vec![23456])]))
    );
    assert!(u.attributes.contains(&PathAttribute::As4Path(vec![
        crate::wire::AsSegment::Sequence(vec![4_200_000_000])
    ])));
}
