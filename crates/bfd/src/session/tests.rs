use proptest::prelude::*;

use super::*;
use crate::packet::Auth;

mod pair;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A jitter source that always says the same: 0 gives the full interval, 2500 the shortest.
#[derive(Debug, Clone)]
struct Fixed(u32);

impl Jitter for Fixed {
    fn next_u32(&mut self) -> u32 {
        self.0
    }
}

const OURS: u32 = 0x11;
const THEIRS: u32 = 0x22;

fn fast() -> Params {
    Params { desired_min_tx: ms(100), required_min_rx: ms(200), detect_mult: 3, role: Role::Active }
}

fn session(t0: Instant) -> Session<Fixed> {
    Session::new(OURS, fast(), Fixed(0), t0).expect("valid")
}

/// A packet from the peer in `state`, with FRR-like timers: 300 ms both ways, multiplier 3.
fn from_peer(state: State) -> Packet {
    Packet {
        diag: Diag::None,
        state,
        poll: false,
        final_: false,
        control_plane_independent: false,
        demand: false,
        detect_mult: 3,
        my_discriminator: THEIRS,
        your_discriminator: if state == State::Down || state == State::AdminDown {
            0
        } else {
            OURS
        },
        desired_min_tx: ms(300),
        required_min_rx: ms(300),
        required_min_echo_rx: Duration::ZERO,
        auth: None,
    }
}

fn drain(s: &mut Session<Fixed>) -> (Vec<Packet>, Vec<Event>) {
    let packets = std::iter::from_fn(|| s.poll_transmit()).collect();
    let events = std::iter::from_fn(|| s.poll_event()).collect();
    (packets, events)
}

/// A session in `state`, reached the regular way, with its outputs drained.
fn in_state(t0: Instant, state: State) -> Session<Fixed> {
    let mut s = session(t0);
    match state {
        State::Down => {}
        State::Init => s.handle_packet(t0, &from_peer(State::Down)).expect("accepted"),
        State::Up => s.handle_packet(t0, &from_peer(State::Init)).expect("accepted"),
        State::AdminDown => s.set_admin_down(t0),
    }
    drain(&mut s);
    assert_eq!(s.state(), state);
    s
}

#[test]
fn state_transitions_of_section_6_8_6() {
    use State::*;
    let neighbor = Some(Event::Down(Diag::NeighborSignaledSessionDown));
    let cases: [(State, State, State, Option<Event>); 12] = [
        (Down, AdminDown, Down, None),
        (Down, Down, Init, None),
        (Down, Init, Up, Some(Event::Up)),
        (Down, Up, Down, None),
        (Init, AdminDown, Down, neighbor),
        (Init, Down, Init, None),
        (Init, Init, Up, Some(Event::Up)),
        (Init, Up, Up, Some(Event::Up)),
        (Up, AdminDown, Down, neighbor),
        (Up, Down, Down, neighbor),
        (Up, Init, Up, None),
        (Up, Up, Up, None),
    ];
    let t0 = Instant::now();
    for (local, received, expected, event) in cases {
        let mut s = in_state(t0, local);
        s.handle_packet(t0, &from_peer(received)).expect("accepted");
        let (packets, events) = drain(&mut s);
        let what = format!("{local:?} + {received:?}");
        assert_eq!(s.state(), expected, "{what}");
        assert_eq!(events, event.into_iter().collect::<Vec<_>>(), "{what}");
        assert_eq!(s.remote_state(), received, "{what}");
        assert_eq!(s.remote_discriminator(), THEIRS, "{what}");
        if expected != local {
            // A state change is announced at once, carrying the new state and diagnostic.
            let last = packets.last().expect("a packet on a state change");
            assert_eq!((last.state, last.diag), (expected, s.local_diag()), "{what}");
        }
    }
}

#[test]
fn admin_down_discards_everything_until_enabled() {
    let t0 = Instant::now();
    let mut s = in_state(t0, State::Up);
    s.set_admin_down(t0);
    let (packets, events) = drain(&mut s);
    assert_eq!(events, [Event::AdminDown]);
    assert_eq!(
        packets.last().map(|p| (p.state, p.diag)),
        Some((State::AdminDown, Diag::AdministrativelyDown))
    );
    for state in [State::AdminDown, State::Down, State::Init, State::Up] {
        assert_eq!(s.handle_packet(t0, &from_peer(state)), Err(Rejected::AdminDown));
    }
    assert_eq!(s.poll_timeout().map(|t| t > t0), Some(true), "AdminDown is still sent, slowly");
    s.set_admin_up(t0);
    assert_eq!((s.state(), s.local_diag()), (State::Down, Diag::None));
    s.handle_packet(t0, &from_peer(State::Down)).expect("accepted again");
    assert_eq!(s.state(), State::Init);
}

#[test]
fn rejected_packets_leave_the_session_alone() {
    let t0 = Instant::now();
    let with_auth =
        Packet { auth: Some(Auth { auth_type: 1, data: vec![1, b'x'] }), ..from_peer(State::Init) };
    let wrong = Packet { your_discriminator: OURS + 1, ..from_peer(State::Init) };
    for (packet, reason) in
        [(with_auth, Rejected::UnexpectedAuthentication), (wrong, Rejected::WrongDiscriminator)]
    {
        let mut s = in_state(t0, State::Down);
        assert_eq!(s.handle_packet(t0, &packet), Err(reason));
        assert_eq!((s.state(), s.remote_discriminator()), (State::Down, 0));
        assert!(!reason.label().is_empty());
    }
}

#[test]
fn detection_time_expiry() {
    let t0 = Instant::now();
    for (state, event) in [
        (State::Up, Some(Event::Down(Diag::ControlDetectionTimeExpired))),
        (State::Init, Some(Event::Down(Diag::ControlDetectionTimeExpired))),
        (State::Down, None),
    ] {
        let mut s = in_state(t0, state);
        if state == State::Down {
            // Heard, but not yet talking to us properly: a Down session stays Down on Up.
            s.handle_packet(t0, &from_peer(State::Up)).expect("accepted");
        }
        // 3 × max(our 200 ms RX, their 300 ms TX) = 900 ms (§6.8.4).
        assert_eq!(s.detection_time(), ms(900));
        s.handle_timeout(t0 + ms(899));
        assert_eq!(drain(&mut s).1, [], "{state:?} before the deadline");
        assert_eq!(s.state(), state);
        s.handle_timeout(t0 + ms(900));
        assert_eq!(drain(&mut s).1, event.into_iter().collect::<Vec<_>>(), "{state:?}");
        assert_eq!((s.state(), s.remote_discriminator()), (State::Down, 0), "{state:?}");
        if event.is_some() {
            assert_eq!(s.local_diag(), Diag::ControlDetectionTimeExpired);
        }
    }
}

#[test]
fn every_packet_restarts_detection() {
    let t0 = Instant::now();
    let mut s = in_state(t0, State::Up);
    for k in 1..=5 {
        s.handle_packet(t0 + ms(800 * k), &from_peer(State::Up)).expect("accepted");
        s.handle_timeout(t0 + ms(800 * k + 899));
        assert_eq!(s.state(), State::Up);
    }
}

#[test]
fn slow_transmission_while_not_up() {
    let t0 = Instant::now();
    let mut s = session(t0);
    let first = s.poll_transmit().expect("a first packet at once");
    assert_eq!(
        (first.state, first.desired_min_tx, first.required_min_rx),
        (State::Down, SLOW_TX, ms(200))
    );
    assert_eq!((first.your_discriminator, first.my_discriminator), (0, OURS));
    assert_eq!(s.poll_timeout(), Some(t0 + SLOW_TX), "full interval with jitter 0");
    s.handle_timeout(t0 + SLOW_TX);
    assert!(s.poll_transmit().is_some());
    assert!(s.poll_transmit().is_none());
    // The peer's 300 ms RX does not speed up a session that is not Up.
    s.handle_packet(t0 + SLOW_TX, &from_peer(State::Down)).expect("accepted");
    assert_eq!(s.tx_interval(), Some(SLOW_TX));
}

#[test]
fn jitter_keeps_intervals_between_75_and_100_percent() {
    let t0 = Instant::now();
    // (jitter value, detect multiplier, expected share of the 1 s interval in ms)
    let cases = [(0, 3, 1000), (2500, 3, 750), (1250, 3, 875), (0, 1, 900), (1500, 1, 750)];
    for (value, detect_mult, expected) in cases {
        let params = Params { detect_mult, ..fast() };
        let s = Session::new(OURS, params, Fixed(value), t0).expect("valid");
        assert_eq!(s.poll_timeout(), Some(t0 + ms(expected)), "jitter {value}, mult {detect_mult}");
    }
}

#[test]
fn coming_up_polls_for_the_fast_rate() {
    let t0 = Instant::now();
    let mut s = session(t0);
    drain(&mut s);
    s.handle_packet(t0, &from_peer(State::Init)).expect("accepted");
    let (packets, events) = drain(&mut s);
    assert_eq!(events, [Event::Up]);
    let p = packets.last().expect("sent at once");
    assert!(p.poll && !p.final_, "{p:?}");
    assert_eq!((p.state, p.desired_min_tx), (State::Up, ms(100)));
    // Faster TX is in force at once: max(100 ms ours, 300 ms their RX).
    assert_eq!(s.tx_interval(), Some(ms(300)));
    assert!(s.polling());
    // The peer answers; the sequence ends, and later packets carry no P.
    let answer = Packet { final_: true, ..from_peer(State::Up) };
    s.handle_packet(t0 + ms(1), &answer).expect("accepted");
    assert!(!s.polling());
    s.handle_timeout(t0 + ms(400));
    assert!(!s.poll_transmit().expect("periodic").poll);
}

#[test]
fn slower_tx_waits_for_the_final() {
    let t0 = Instant::now();
    let mut s = in_state(t0, State::Up);
    s.handle_packet(t0, &Packet { final_: true, required_min_rx: ms(10), ..from_peer(State::Up) })
        .expect("accepted");
    assert_eq!(s.tx_interval(), Some(ms(100)));
    s.set_params(t0, Params { desired_min_tx: ms(500), ..fast() }).expect("valid");
    let p = s.poll_transmit().expect("the poll goes out at once");
    assert!(p.poll && p.desired_min_tx == ms(500));
    assert_eq!(s.tx_interval(), Some(ms(100)), "old rate until the Final (§6.8.3)");
    s.handle_packet(t0, &Packet { final_: true, required_min_rx: ms(10), ..from_peer(State::Up) })
        .expect("accepted");
    assert_eq!(s.tx_interval(), Some(ms(500)));
}

#[test]
fn faster_rx_waits_for_the_final() {
    let t0 = Instant::now();
    let mut s = in_state(t0, State::Up);
    let fast_peer = Packet { desired_min_tx: ms(10), ..from_peer(State::Up) };
    s.handle_packet(t0, &Packet { final_: true, ..fast_peer.clone() }).expect("accepted");
    assert_eq!(s.detection_time(), ms(600), "3 × our 200 ms RX");
    s.set_params(t0, Params { required_min_rx: ms(50), ..fast() }).expect("valid");
    s.handle_packet(t0, &fast_peer).expect("accepted");
    assert_eq!(s.detection_time(), ms(600), "old detection time until the Final (§6.8.3)");
    s.handle_packet(t0, &Packet { final_: true, ..fast_peer }).expect("accepted");
    assert_eq!(s.detection_time(), ms(150));
}

#[test]
fn a_poll_is_answered_by_a_final_alone() {
    let t0 = Instant::now();
    let mut s = session(t0);
    drain(&mut s);
    s.handle_packet(t0, &from_peer(State::Init)).expect("accepted");
    assert!(s.polling());
    s.handle_packet(t0, &Packet { poll: true, ..from_peer(State::Up) }).expect("accepted");
    let (packets, _) = drain(&mut s);
    assert!(packets[0].final_ && !packets[0].poll, "Final first, without P: {:?}", packets[0]);
    assert!(packets[1..].iter().all(|p| p.poll && !p.final_), "then our own poll: {packets:?}");
    // A Final we did not ask for changes nothing.
    let mut idle = in_state(t0, State::Down);
    idle.handle_packet(t0, &Packet { final_: true, ..from_peer(State::Down) }).expect("accepted");
    assert!(!idle.polling());
}

#[test]
fn a_peer_asking_for_no_packets_gets_none_but_finals() {
    let t0 = Instant::now();
    let mut s = in_state(t0, State::Up);
    let silent = Packet { required_min_rx: Duration::ZERO, poll: true, ..from_peer(State::Up) };
    s.handle_packet(t0, &silent).expect("accepted");
    assert_eq!(s.tx_interval(), None);
    s.handle_timeout(t0 + ms(100));
    let (packets, _) = drain(&mut s);
    assert!(packets.iter().any(|p| p.final_), "the Final is still sent");
    assert_eq!(s.poll_timeout(), Some(t0 + ms(900)), "only the detection timer is left");
    s.handle_packet(t0 + ms(10), &from_peer(State::Up)).expect("accepted");
    assert_eq!(s.poll_timeout(), Some(t0 + ms(10) + ms(300)), "periodic again");
}

#[test]
fn parameters_are_validated() {
    let t0 = Instant::now();
    let huge = Duration::from_secs(5_000);
    for bad in [
        Params { detect_mult: 0, ..fast() },
        Params { desired_min_tx: Duration::ZERO, ..fast() },
        Params { required_min_rx: Duration::ZERO, ..fast() },
        Params { desired_min_tx: huge, ..fast() },
        Params { required_min_rx: huge, ..fast() },
    ] {
        assert!(matches!(bad.validate(), Err(Error::InvalidParams(_))), "{bad:?}");
        assert!(Session::new(OURS, bad, Fixed(0), t0).is_err());
        assert!(session(t0).set_params(t0, bad).is_err());
    }
    assert!(Params::default().validate().is_ok());
    assert!(Session::new(0, fast(), Fixed(0), t0).is_err(), "discriminator 0 is reserved");
}

proptest! {
    #[test]
    fn xorshift_jitter_stays_in_bounds(seed in any::<u64>(), detect_mult in 1u8..=5, tx in 1u64..=2000) {
        let t0 = Instant::now();
        let params =
            Params { desired_min_tx: ms(tx), required_min_rx: ms(tx), detect_mult, role: Role::Active };
        let mut s = Session::new(OURS, params, XorShift::new(seed), t0).expect("valid");
        let interval = s.tx_interval().expect("periodic");
        let top = if detect_mult == 1 { interval * 9 / 10 } else { interval };
        let mut now = t0;
        for _ in 0..20 {
            let next = s.poll_timeout().expect("scheduled");
            prop_assert!(next - now >= interval * 3 / 4 && next - now <= top, "{:?} of {interval:?}", next - now);
            s.handle_timeout(next);
            now = next;
        }
    }
}

/// FRR advertises Required Min RX 1 s until it is Up, so our first Up schedule uses 1 s; its
/// next packet allows 300 ms, and waiting out the old 1 s made FRR declare us dead (its
/// detection time was 900 ms). Found on the wire against bfdd 8.4.
#[test]
fn a_faster_peer_rx_shortens_the_pending_interval() {
    let t0 = Instant::now();
    let mut s = session(t0);
    drain(&mut s);
    let slow_init =
        Packet { desired_min_tx: SLOW_TX, required_min_rx: SLOW_TX, ..from_peer(State::Init) };
    s.handle_packet(t0, &slow_init).expect("accepted");
    assert_eq!(s.state(), State::Up);
    assert_eq!(s.poll_timeout(), Some(t0 + SLOW_TX));
    let t1 = t0 + ms(1);
    s.handle_packet(t1, &Packet { poll: true, ..from_peer(State::Up) }).expect("accepted");
    assert_eq!(s.poll_timeout(), Some(t1 + ms(300)), "rescheduled on the new, shorter interval");
    // A longer interval does not postpone a packet already due sooner.
    let t2 = t1 + ms(1);
    s.handle_packet(t2, &Packet { required_min_rx: SLOW_TX, ..from_peer(State::Up) })
        .expect("accepted");
    assert_eq!(s.poll_timeout(), Some(t1 + ms(300)));
}

#[derive(Debug, Clone)]
enum Input {
    Packet(Packet),
    Timeout,
    Params(Params),
    AdminDown,
    AdminUp,
}

fn arb_input() -> impl Strategy<Value = Input> {
    let state =
        prop_oneof![Just(State::AdminDown), Just(State::Down), Just(State::Init), Just(State::Up)];
    let packet = (state, any::<[bool; 2]>(), 1u8..=5, 0u64..=2_000, 0u64..=2_000, any::<bool>())
        .prop_map(|(state, [poll, final_], detect_mult, tx, rx, ours)| {
            Input::Packet(Packet {
                poll,
                final_,
                detect_mult,
                desired_min_tx: ms(tx),
                required_min_rx: ms(rx),
                your_discriminator: if ours { OURS } else { 0 },
                ..from_peer(state)
            })
        });
    let params = (1u64..=2_000, 1u64..=2_000, 1u8..=5).prop_map(|(tx, rx, detect_mult)| {
        Input::Params(Params {
            desired_min_tx: ms(tx),
            required_min_rx: ms(rx),
            detect_mult,
            role: Role::Active,
        })
    });
    prop_oneof![
        6 => packet,
        6 => Just(Input::Timeout),
        1 => params,
        1 => Just(Input::AdminDown),
        1 => Just(Input::AdminUp),
    ]
}

proptest! {
    /// Whatever arrives in whatever order: no panic, P and F never together, Up only with a
    /// known peer, events only on real state changes, and something always scheduled unless
    /// the peer asked for silence.
    #[test]
    fn arbitrary_inputs_keep_the_invariants(
        inputs in proptest::collection::vec((arb_input(), 0u64..=1_500), 1..200),
        seed in any::<u64>(),
    ) {
        let t0 = Instant::now();
        let mut s = Session::new(OURS, fast(), XorShift::new(seed), t0).expect("valid");
        let mut now = t0;
        for (input, step) in inputs {
            now += ms(step);
            let before = s.state();
            match input {
                Input::Packet(packet) => {
                    let _ = s.handle_packet(now, &packet);
                }
                Input::Timeout => {
                    if s.poll_timeout().is_some_and(|t| t <= now) {
                        s.handle_timeout(now);
                    }
                }
                Input::Params(params) => s.set_params(now, params).expect("valid"),
                Input::AdminDown => s.set_admin_down(now),
                Input::AdminUp => s.set_admin_up(now),
            }
            while let Some(packet) = s.poll_transmit() {
                prop_assert!(!(packet.poll && packet.final_), "{packet:?}");
                prop_assert_eq!(packet.state, s.state());
                prop_assert_eq!(Packet::decode(&packet.encode()), Ok(packet));
            }
            let events: Vec<_> = std::iter::from_fn(|| s.poll_event()).collect();
            if s.state() == State::Up {
                prop_assert_ne!(s.remote_discriminator(), 0);
            }
            if before == s.state() {
                prop_assert!(events.is_empty(), "{events:?} without a change from {before:?}");
            }
            if s.tx_interval().is_some() {
                prop_assert!(s.poll_timeout().is_some());
            }
        }
    }
}

#[test]
fn a_passive_session_sends_nothing_until_it_hears_the_peer_and_falls_silent_when_it_is_gone() {
    let t0 = Instant::now();
    let passive = Params { role: Role::Passive, ..fast() };
    let mut s = Session::new(OURS, passive, Fixed(0), t0).expect("valid");
    assert_eq!(s.tx_interval(), None);
    // Seconds go by: not one packet (§6.8.7: none while bfd.RemoteDiscr is zero).
    for i in 1..=5 {
        s.handle_timeout(t0 + SLOW_TX * i);
        assert!(drain(&mut s).0.is_empty(), "second {i}");
    }
    // The peer starts: the session answers at once and comes up as an active one would.
    let t1 = t0 + SLOW_TX * 6;
    s.handle_packet(t1, &from_peer(State::Down)).expect("accepted");
    let (packets, _) = drain(&mut s);
    assert_eq!(packets.len(), 1);
    assert_eq!((packets[0].state, packets[0].your_discriminator), (State::Init, THEIRS));
    s.handle_packet(t1, &from_peer(State::Up)).expect("accepted");
    assert_eq!(drain(&mut s).1, [Event::Up]);
    assert!(s.tx_interval().is_some());
    // The peer goes quiet: detected dead, and silent again instead of calling it.
    let dead = t1 + s.detection_time();
    s.handle_timeout(dead);
    let (packets, events) = drain(&mut s);
    assert_eq!(events, [Event::Down(Diag::ControlDetectionTimeExpired)]);
    assert!(packets.is_empty(), "{packets:?}");
    s.handle_timeout(dead + SLOW_TX * 3);
    assert!(drain(&mut s).0.is_empty());
}
