//! The state machine in a simulated network: messages are delivered instantly between
//! members addressed 192.0.2.N:4200, a killed member receives and sends nothing, and the clock
//! advances in 10 ms steps, so every timing below is exact and reproducible.

use std::collections::BTreeSet;

use super::*;

/// Simulation step: 20× finer than the probe interval, so the measured timings are the
/// protocol's, not the simulation's.
const STEP: Duration = Duration::from_millis(10);

fn addr(i: usize) -> SocketAddr {
    SocketAddr::from(([192, 0, 2, u8::try_from(i + 1).expect("small")], 4200))
}

struct Net {
    members: Vec<Membership>,
    down: BTreeSet<usize>,
    now: Instant,
    start: Instant,
    changes: Vec<(Duration, String, Change)>,
}

impl Net {
    /// `n` members; every member knows only member 0 as a seed (member 0 knows nobody).
    fn new(n: usize) -> Self {
        let start = Instant::now();
        let members = (0..n)
            .map(|i| {
                let seeds = if i == 0 { vec![] } else { vec![addr(0)] };
                Membership::new(format!("n{i}"), 1, seeds, Tuning::default(), start)
            })
            .collect();
        Self { members, down: BTreeSet::new(), now: start, start, changes: Vec::new() }
    }

    fn index(&self, to: SocketAddr) -> Option<usize> {
        (0..self.members.len()).find(|i| addr(*i) == to)
    }

    fn deliver(&mut self, from: usize, mut queue: Vec<Outgoing>) {
        let mut pending: Vec<(usize, Outgoing)> = queue.drain(..).map(|o| (from, o)).collect();
        while let Some((sender, out)) = pending.pop() {
            let Some(to) = self.index(out.to) else { continue };
            if self.down.contains(&to) || self.down.contains(&sender) {
                continue;
            }
            let replies = self.members[to].receive(addr(sender), out.message, self.now);
            pending.extend(replies.into_iter().map(|o| (to, o)));
        }
    }

    fn step(&mut self) {
        self.now += STEP;
        for i in 0..self.members.len() {
            if self.down.contains(&i) {
                continue;
            }
            let out = self.members[i].tick(self.now);
            self.deliver(i, out);
        }
        for member in &mut self.members {
            let me = member.me().to_owned();
            for change in member.take_changes() {
                self.changes.push((self.now - self.start, me.clone(), change));
            }
        }
    }

    fn run_for(&mut self, duration: Duration) {
        let end = self.now + duration;
        while self.now < end {
            self.step();
        }
    }

    fn state(&self, observer: usize, of: usize) -> Option<MemberState> {
        self.members[observer].view().get(&format!("n{of}")).copied()
    }

    /// When `observer` first saw `of` in `state`, since the simulation start.
    fn when(&self, observer: usize, of: usize, state: MemberState) -> Option<Duration> {
        self.changes
            .iter()
            .find(|(_, me, c)| {
                *me == format!("n{observer}") && c.name == format!("n{of}") && c.to == state
            })
            .map(|(at, _, _)| *at)
    }
}

#[test]
fn members_join_through_one_seed_and_see_each_other() {
    let mut net = Net::new(4);
    net.run_for(Duration::from_secs(2));
    for observer in 0..4 {
        for of in 0..4 {
            assert_eq!(net.state(observer, of), Some(MemberState::Alive), "n{observer} on n{of}");
        }
    }
}

#[test]
fn a_killed_member_is_declared_dead_by_everyone_within_a_second() {
    let mut net = Net::new(3);
    net.run_for(Duration::from_secs(2));
    let killed_at = net.now - net.start;
    net.down.insert(0);
    net.run_for(Duration::from_secs(2));
    for observer in [1, 2] {
        assert_eq!(net.state(observer, 0), Some(MemberState::Dead));
        let dead = net.when(observer, 0, MemberState::Dead).expect("declared dead") - killed_at;
        // Tuning::default documents ≈0.9 s worst case plus one period to spread.
        assert!(dead <= Duration::from_millis(1100), "n{observer} took {dead:?}");
        let suspect = net.when(observer, 0, MemberState::Suspect).expect("suspected first");
        assert!(suspect - killed_at < dead, "suspicion precedes death");
    }
    // The survivors still see each other.
    assert_eq!(net.state(1, 2), Some(MemberState::Alive));
    assert_eq!(net.state(2, 1), Some(MemberState::Alive));
}

#[test]
fn a_short_outage_is_refuted_not_declared_dead() {
    let mut net = Net::new(3);
    net.run_for(Duration::from_secs(2));
    // Long enough to fail a probe (300 ms), shorter than probe + suspicion.
    net.down.insert(2);
    net.run_for(Duration::from_millis(350));
    net.down.clear();
    net.run_for(Duration::from_secs(2));
    let suspected =
        net.changes.iter().any(|(_, _, c)| c.name == "n2" && c.to == MemberState::Suspect);
    assert!(suspected, "the outage was long enough to be suspected: {:?}", net.changes);
    assert!(
        !net.changes.iter().any(|(_, _, c)| c.name == "n2" && c.to == MemberState::Dead),
        "{:?}",
        net.changes
    );
    assert_eq!(net.state(0, 2), Some(MemberState::Alive));
    assert_eq!(net.state(1, 2), Some(MemberState::Alive));
    assert!(net.members[2].incarnation() > 1, "n2 refuted by raising its incarnation");
}

#[test]
fn a_leaving_member_is_left_for_everyone_at_once() {
    let mut net = Net::new(3);
    net.run_for(Duration::from_secs(2));
    let out = net.members[0].leave();
    assert_eq!(out.len(), 2);
    net.deliver(0, out);
    assert_eq!(net.state(1, 0), Some(MemberState::Left));
    assert_eq!(net.state(2, 0), Some(MemberState::Left));
    assert_eq!(net.state(0, 0), Some(MemberState::Left));
    // A left member stays silent.
    assert!(net.members[0].tick(net.now + Duration::from_secs(5)).is_empty());
}

#[test]
fn a_restarted_member_with_a_newer_incarnation_is_alive_again() {
    let mut net = Net::new(3);
    net.run_for(Duration::from_secs(2));
    net.down.insert(0);
    net.run_for(Duration::from_secs(2));
    assert_eq!(net.state(1, 0), Some(MemberState::Dead));
    // A new process: fresh state, a later boot time as incarnation.
    net.members[0] = Membership::new("n0".into(), 2, vec![addr(1)], Tuning::default(), net.now);
    net.down.clear();
    net.run_for(Duration::from_secs(2));
    assert_eq!(net.state(1, 0), Some(MemberState::Alive));
    assert_eq!(net.state(2, 0), Some(MemberState::Alive));
    assert_eq!(net.state(0, 2), Some(MemberState::Alive));
}

#[test]
fn precedence_of_updates() {
    let now = Instant::now();
    let mut m = Membership::new("me".into(), 1, vec![], Tuning::default(), now);
    let update =
        |incarnation, state| Update { name: "x".into(), addr: addr(5), incarnation, state };
    let ping = |updates| Message {
        from: "y".into(),
        incarnation: 1,
        body: Body::Ping { seq: 1 },
        updates,
    };
    m.receive(addr(6), ping(vec![update(3, MemberState::Alive)]), now);
    assert_eq!(m.view()["x"], MemberState::Alive);
    // Older news loses, whatever it says.
    m.receive(addr(6), ping(vec![update(2, MemberState::Dead)]), now);
    assert_eq!(m.view()["x"], MemberState::Alive);
    // Same incarnation: suspect beats alive, dead beats suspect, alive does not undo them.
    m.receive(addr(6), ping(vec![update(3, MemberState::Suspect)]), now);
    assert_eq!(m.view()["x"], MemberState::Suspect);
    m.receive(addr(6), ping(vec![update(3, MemberState::Alive)]), now);
    assert_eq!(m.view()["x"], MemberState::Suspect);
    m.receive(addr(6), ping(vec![update(3, MemberState::Dead)]), now);
    assert_eq!(m.view()["x"], MemberState::Dead);
    // Only a newer incarnation (the member's own refutation) revives it.
    m.receive(addr(6), ping(vec![update(4, MemberState::Alive)]), now);
    assert_eq!(m.view()["x"], MemberState::Alive);
    // Claims about ourselves are refuted, not applied.
    let about_me =
        Update { name: "me".into(), addr: addr(0), incarnation: 1, state: MemberState::Dead };
    let reply = m.receive(addr(6), ping(vec![about_me]), now);
    assert_eq!(m.incarnation(), 2);
    assert_eq!(m.view()["me"], MemberState::Alive);
    assert_eq!(reply[0].message.incarnation, 2, "the ack carries the refutation");
}

#[test]
fn a_ping_req_is_relayed() {
    let now = Instant::now();
    let mut helper = Membership::new("h".into(), 1, vec![], Tuning::default(), now);
    let request = Message {
        from: "r".into(),
        incarnation: 1,
        body: Body::PingReq { seq: 77, target: addr(3) },
        updates: vec![],
    };
    let out = helper.receive(addr(1), request, now);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].to, addr(3));
    let Body::Ping { seq } = out[0].message.body else { panic!("a ping: {out:?}") };
    let ack =
        Message { from: "t".into(), incarnation: 1, body: Body::Ack { seq }, updates: vec![] };
    let relayed = helper.receive(addr(3), ack, now);
    assert_eq!(relayed.len(), 1);
    assert_eq!(relayed[0].to, addr(1));
    assert_eq!(relayed[0].message.body, Body::Ack { seq: 77 });
}

#[test]
fn seeds_learned_later_are_joined_at_the_next_tick() {
    // Nobody knows anybody: the Kubernetes source has not listed the speaker pods yet.
    let mut net = Net::new(3);
    for member in &mut net.members {
        member.seeds.clear();
    }
    net.run_for(Duration::from_secs(3));
    assert_eq!(net.state(1, 0), None, "no seed, no contact");
    // The pods are listed: each learns every address (its own is filtered by the driver).
    let now = net.now;
    for (i, member) in net.members.iter_mut().enumerate() {
        member.set_seeds((0..3).filter(|j| *j != i).map(addr).collect(), now);
    }
    net.run_for(STEP * 2);
    for observer in 0..3 {
        for of in 0..3 {
            assert_eq!(net.state(observer, of), Some(MemberState::Alive), "{observer} sees {of}");
        }
    }
}

#[test]
fn a_refutation_reaches_every_member_at_once() {
    let mut net = Net::new(3);
    net.run_for(Duration::from_secs(2));
    // n0 suspects n2 (a lost ack); n2 hears of it from n1 and must not wait for its next
    // exchange with n0 to refute.
    let now = net.now;
    let incarnation = net.members[2].incarnation();
    net.members[0].declare("n2", incarnation, MemberState::Suspect, now);
    let suspicion =
        Update { name: "n2".into(), addr: addr(2), incarnation, state: MemberState::Suspect };
    let message = Message {
        from: "n1".into(),
        incarnation: 1,
        body: Body::Ping { seq: 9 },
        updates: vec![suspicion],
    };
    let out = net.members[2].receive(addr(1), message, now);
    assert!(net.members[2].incarnation() > incarnation);
    let mut told: Vec<SocketAddr> = out.iter().map(|o| o.to).collect();
    told.sort_unstable();
    told.dedup();
    assert_eq!(told, [addr(0), addr(1)], "the ack to n1 and a ping to n0");
    net.deliver(2, out);
    assert_eq!(net.state(0, 2), Some(MemberState::Alive), "n0 learned the refutation at once");
}

#[test]
fn a_claim_at_the_largest_incarnation_does_not_overflow() {
    let now = Instant::now();
    let mut m = Membership::new("me".into(), 1, vec![], Tuning::default(), now);
    let claim = |state| Message {
        from: "y".into(),
        incarnation: u64::MAX,
        body: Body::Ping { seq: 1 },
        updates: vec![Update { name: "me".into(), addr: addr(0), incarnation: u64::MAX, state }],
    };
    // A peer at its maximum incarnation, claiming we are suspect at the maximum too.
    let reply = m.receive(addr(6), claim(MemberState::Suspect), now);
    assert_eq!(m.incarnation(), 1, "cannot outrank the claim; keeps running");
    assert_eq!(m.view()["me"], MemberState::Alive);
    assert_eq!(m.view()["y"], MemberState::Alive);
    assert!(matches!(reply.last().map(|o| &o.message.body), Some(Body::Ack { seq: 1 })));
    // One below the maximum is refuted at the maximum.
    let mut m = Membership::new("me".into(), 1, vec![], Tuning::default(), now);
    let mut below = claim(MemberState::Dead);
    below.updates[0].incarnation = u64::MAX - 1;
    m.receive(addr(6), below, now);
    assert_eq!(m.incarnation(), u64::MAX);
}

#[test]
fn dead_members_are_forgotten_after_a_while() {
    let mut net = Net::new(3);
    net.run_for(Duration::from_secs(2));
    net.down.insert(0);
    net.run_for(Duration::from_secs(2));
    assert_eq!(net.state(1, 0), Some(MemberState::Dead));
    assert_eq!(net.members[1].len(), 2);
    net.run_for(Tuning::default().prune_after);
    assert_eq!(net.state(1, 0), None, "pruned");
    assert_eq!(net.members[1].len(), 1);
    assert_eq!(net.state(1, 2), Some(MemberState::Alive), "the live one stays");
    // Memory stays bounded: no queued broadcast about the forgotten member either.
    assert!(net.members[1].broadcasts.iter().all(|b| b.update.name != "n0"));
}

#[test]
fn quorum_counts_dead_members_and_unseen_seeds_but_not_left_ones() {
    let now = Instant::now();
    // Alone with two peers never heard from: 1 of 3.
    let m = Membership::new("me".into(), 1, vec![addr(1), addr(2)], Tuning::default(), now);
    assert_eq!(m.quorum(), Quorum { reached: 1, known: 3 });
    assert!(!m.quorum().is_majority());
    // Alone without peers (a one-node cluster): 1 of 1.
    let alone = Membership::new("me".into(), 1, vec![], Tuning::default(), now);
    assert!(alone.quorum().is_majority());

    let mut m = Membership::new("me".into(), 1, vec![addr(1), addr(2)], Tuning::default(), now);
    let hello =
        |from: &str, body| Message { from: from.into(), incarnation: 1, body, updates: vec![] };
    m.receive(addr(1), hello("p1", Body::Ping { seq: 1 }), now);
    assert_eq!(m.quorum(), Quorum { reached: 2, known: 3 }, "p1 seen, p2 still a seed");
    assert!(m.quorum().is_majority());
    let cases = [
        (MemberState::Suspect, Quorum { reached: 2, known: 3 }),
        (MemberState::Dead, Quorum { reached: 1, known: 3 }),
        (MemberState::Left, Quorum { reached: 1, known: 2 }),
    ];
    for (state, want) in cases {
        let mut m = Membership::new("me".into(), 1, vec![addr(1), addr(2)], Tuning::default(), now);
        m.receive(addr(1), hello("p1", Body::Ping { seq: 1 }), now);
        let about = Update { name: "p1".into(), addr: addr(1), incarnation: 1, state };
        let mut news = hello("p3", Body::Ack { seq: 9 });
        news.updates.push(about);
        m.receive(addr(3), news, now);
        // p3 (alive, not a seed) counts too.
        let want = Quorum { reached: want.reached + 1, known: want.known + 1 };
        assert_eq!(m.quorum(), want, "{state:?}");
    }
}
