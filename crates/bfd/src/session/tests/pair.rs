//! Two sessions wired together through a simulated link (through the codec, with a fixed
//! delay), driven by simulated time: they come Up, stay Up, and the survivor detects a peer
//! that falls silent within the detection time.

use std::collections::BTreeMap;

use super::*;

/// Upper bound of simulation steps: a run covers a few simulated seconds at 10 ms intervals at
/// the fastest, a few thousand steps; the bound only turns a bug into a failure.
const MAX_STEPS: usize = 200_000;

struct Sim {
    sessions: [Session<XorShift>; 2],
    /// Delivery time and sequence number → (receiver, bytes).
    in_flight: BTreeMap<(Instant, u64), (usize, Vec<u8>)>,
    seq: u64,
    delay: Duration,
    now: Instant,
    silent: [bool; 2],
    events: Vec<(Instant, usize, Event)>,
}

impl Sim {
    fn new(t0: Instant, params: [Params; 2], seeds: [u64; 2], delay: Duration) -> Sim {
        let make = |i: usize| {
            Session::new(i as u32 + 1, params[i], XorShift::new(seeds[i]), t0).expect("valid")
        };
        let mut sim = Sim {
            sessions: [make(0), make(1)],
            in_flight: BTreeMap::new(),
            seq: 0,
            delay,
            now: t0,
            silent: [false; 2],
            events: Vec::new(),
        };
        sim.flush();
        sim
    }

    fn flush(&mut self) {
        for i in 0..2 {
            if self.silent[i] {
                continue;
            }
            while let Some(packet) = self.sessions[i].poll_transmit() {
                self.seq += 1;
                self.in_flight.insert((self.now + self.delay, self.seq), (1 - i, packet.encode()));
            }
            while let Some(event) = self.sessions[i].poll_event() {
                self.events.push((self.now, i, event));
            }
        }
    }

    /// Runs until `until` (simulated).
    fn run_until(&mut self, until: Instant) {
        for _ in 0..MAX_STEPS {
            let timers =
                (0..2).filter(|&i| !self.silent[i]).filter_map(|i| self.sessions[i].poll_timeout());
            let deliveries = self.in_flight.keys().next().map(|(at, _)| *at);
            let Some(next) = timers.chain(deliveries).min() else { return };
            if next > until {
                self.now = until;
                return;
            }
            self.now = self.now.max(next);
            while let Some(entry) = self.in_flight.first_entry() {
                if entry.key().0 > self.now {
                    break;
                }
                let (to, bytes) = entry.remove();
                if !self.silent[to] {
                    let packet = Packet::decode(&bytes).expect("our own packets decode");
                    self.sessions[to].handle_packet(self.now, &packet).expect("accepted");
                }
            }
            for i in 0..2 {
                if !self.silent[i] && self.sessions[i].poll_timeout().is_some_and(|t| t <= self.now)
                {
                    self.sessions[i].handle_timeout(self.now);
                }
            }
            self.flush();
        }
        panic!("simulation did not reach {until:?} within {MAX_STEPS} steps");
    }
}

prop_compose! {
    fn arb_params()(tx in 10u64..=500, rx in 10u64..=500, detect_mult in 1u8..=5) -> Params {
        Params { desired_min_tx: ms(tx), required_min_rx: ms(rx), detect_mult, role: Role::Active }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn two_sessions_come_up_and_detect_a_silent_peer(
        params in [arb_params(), arb_params()],
        seeds in any::<[u64; 2]>(),
        delay_us in 0u64..=2_000,
        silent in 0usize..2,
    ) {
        let t0 = Instant::now();
        let mut sim = Sim::new(t0, params, seeds, Duration::from_micros(delay_us));
        // Both sides send at once, so a round trip or two brings both Up.
        sim.run_until(t0 + SLOW_TX);
        prop_assert!(sim.sessions.iter().all(|s| s.state() == State::Up), "{:?}", sim.events);
        // Stable: three more seconds of traffic, including the Poll Sequences, and no Down.
        sim.run_until(t0 + 4 * SLOW_TX);
        prop_assert!(sim.events.iter().all(|(_, _, e)| *e == Event::Up), "{:?}", sim.events);
        prop_assert!(sim.sessions.iter().all(|s| !s.polling()));

        let survivor = 1 - silent;
        let detection = sim.sessions[survivor].detection_time();
        // §6.8.4: the silent side's multiplier × max(survivor's RX, silent side's TX).
        let expected = params[survivor].required_min_rx.max(params[silent].desired_min_tx)
            * u32::from(params[silent].detect_mult);
        prop_assert_eq!(detection, expected);
        let muted = sim.now;
        sim.silent[silent] = true;
        sim.run_until(muted + detection + SLOW_TX);
        let downs: Vec<_> = sim.events.iter().filter(|(_, _, e)| *e != Event::Up).collect();
        prop_assert_eq!(downs.len(), 1, "{:?}", sim.events);
        let (at, who, event) = *downs[0];
        prop_assert_eq!((who, event), (survivor, Event::Down(Diag::ControlDetectionTimeExpired)));
        // The last packet may still be on the wire when the peer falls silent: + one delay.
        let bound = detection + sim.delay;
        prop_assert!(at > muted && at - muted <= bound, "detected after {:?} of {bound:?}", at - muted);
    }
}
