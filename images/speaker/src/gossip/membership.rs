//! The SWIM membership state machine: messages and clock ticks in, messages and view changes
//! out. No sockets and no clock of its own — the caller passes `now` — so every timing rule is
//! unit-tested deterministically; [`super::driver`] moves its messages over UDP.
//!
//! Protocol (Das, Gupta, Motivala 2002, with the suspicion mechanism and incarnations):
//!
//! - Every `probe_interval` a member pings the next live peer (round robin). No `ack` within
//!   `ack_timeout` → it asks `indirect_probes` other members to `ping_req` the target for it (so
//!   its own congested link alone cannot condemn a peer). Still nothing after a second
//!   `ack_timeout` → the target is *suspect*.
//! - A suspect member is declared *dead* after `suspicion_timeout`, unless it refutes first by
//!   raising its incarnation (it learns it is suspected from piggybacked updates).
//! - A stopping member sends `leave` to everyone: *left* is final for that incarnation, so
//!   backups take over without waiting for any timeout.
//! - Membership updates ride on every ping and ack (each update a bounded number of times);
//!   a first contact is answered with the full view, so a joining member learns everyone at once.
//!
//! Update precedence (classic SWIM): a higher incarnation wins; at the same incarnation
//! `alive < suspect < dead/left`. Only the member itself raises its incarnation.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// At most this many queued updates ride on one message: keeps a datagram well under a
/// 1500-byte MTU (one update is ~80 bytes of JSON).
const MAX_PIGGYBACK: usize = 12;
/// Full-view replies carry at most this many members (~20 KiB of JSON, one UDP datagram);
/// a larger cluster still converges through the piggybacked updates.
const MAX_FULL_VIEW: usize = 256;
/// An update is piggybacked `RETRANSMIT_MULT × ⌈log2(n + 1)⌉` times: SWIM's infection-style
/// dissemination reaches all `n` members with high probability after O(log n) rounds.
const RETRANSMIT_MULT: u32 = 3;

/// Timing of the protocol. The defaults aim at detecting a killed speaker within about one
/// second on a LAN, where a round trip takes well under a millisecond.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tuning {
    /// One probe per member per period. 200 ms: with every member probing one peer per period,
    /// a dead member's first failed probe starts within ~200 ms of its death.
    pub probe_interval: Duration,
    /// Wait for a direct ack, then as long again for the indirect ones. 100 ms is >100× a LAN
    /// round trip; a speaker descheduled for longer on a busy node is only suspected, and the
    /// suspicion timeout below gives it time to refute before anyone takes over.
    pub ack_timeout: Duration,
    /// Members asked to probe indirectly. Two independent paths rule out our own bad link.
    pub indirect_probes: usize,
    /// Suspect → dead. 400 ms = two probe periods in which the suspect can see the suspicion
    /// (piggybacked on the probes it receives) and refute it.
    pub suspicion_timeout: Duration,
    /// How often static peers not (or no longer) in the view are pinged to (re)join them.
    pub seed_interval: Duration,
    /// A member dead or left for this long is forgotten, so churn cannot grow the view without
    /// bound. 60 s: a death is disseminated within a few probe periods, long before.
    pub prune_after: Duration,
}

impl Default for Tuning {
    /// Worst case for a killed speaker: ≤200 ms until probed + 200 ms of direct and indirect
    /// probing + 400 ms suspicion ≈ 0.8 s, then at most one probe period to spread `dead`.
    /// (With 150 ms acks the measured median from `kill -9` to the client's neighbour entry
    /// moving was 1.02 s, just over the one-second goal; docs/BENCHMARKS.md has the current
    /// figure.)
    fn default() -> Self {
        Self {
            probe_interval: Duration::from_millis(200),
            ack_timeout: Duration::from_millis(100),
            indirect_probes: 2,
            suspicion_timeout: Duration::from_millis(400),
            // Joining is not latency-critical; 1 s keeps an absent seed cheap.
            seed_interval: Duration::from_secs(1),
            prune_after: Duration::from_secs(60),
        }
    }
}

/// A member's state in the view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemberState {
    /// Answering probes.
    Alive,
    /// Failed a probe; dead unless it refutes within the suspicion timeout.
    Suspect,
    /// Confirmed dead.
    Dead,
    /// Announced its departure.
    Left,
}

impl MemberState {
    /// Every state, for metrics.
    pub const ALL: [MemberState; 4] =
        [MemberState::Alive, MemberState::Suspect, MemberState::Dead, MemberState::Left];

    /// Metric label.
    pub fn label(self) -> &'static str {
        match self {
            MemberState::Alive => "alive",
            MemberState::Suspect => "suspect",
            MemberState::Dead => "dead",
            MemberState::Left => "left",
        }
    }

    /// Whether the member still counts as running. A suspect does: suspicion alone must not
    /// move addresses, or one lost packet would cause a take-over.
    pub fn is_live(self) -> bool {
        matches!(self, MemberState::Alive | MemberState::Suspect)
    }

    /// Precedence at equal incarnation.
    fn rank(self) -> u8 {
        match self {
            MemberState::Alive => 0,
            MemberState::Suspect => 1,
            MemberState::Dead | MemberState::Left => 2,
        }
    }
}

/// What one member believes about another, as disseminated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Update {
    /// Node name.
    pub name: String,
    /// Where it receives gossip.
    pub addr: SocketAddr,
    /// Its incarnation the claim is about.
    pub incarnation: u64,
    /// The claim.
    pub state: MemberState,
}

/// The protocol verb of a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Body {
    /// Are you alive? Answered with `Ack { seq }`.
    Ping {
        /// Echoed in the ack.
        seq: u64,
    },
    /// Answer to a ping (or a relayed answer to a `PingReq`).
    Ack {
        /// The ping's sequence number.
        seq: u64,
    },
    /// Please ping `target` and relay its ack as `Ack { seq }`.
    PingReq {
        /// The requester's probe sequence number.
        seq: u64,
        /// The member to probe.
        target: SocketAddr,
    },
    /// The sender is stopping.
    Leave,
}

/// One gossip message (authentication and replay protection are the codec's business).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// Sender's node name.
    pub from: String,
    /// Sender's incarnation: a message from it is first-hand proof it is alive at that
    /// incarnation.
    pub incarnation: u64,
    /// The verb.
    pub body: Body,
    /// Piggybacked membership updates.
    #[serde(default)]
    pub updates: Vec<Update>,
}

/// A message to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// Destination.
    pub to: SocketAddr,
    /// The message.
    pub message: Message,
}

/// How many speakers this member reaches out of those it knows.
///
/// Known: itself, every member not `left` (dead ones included: a partition shows the other
/// side as dead), and every seed address no member has (a peer listed or discovered but never
/// heard from). Reached: itself and the live (alive or suspect) members. Two sides of a
/// partition cannot both reach more than half of the same set, so a rule "act only with a
/// majority" cannot make two nodes answer for one address. Left members are not counted: a
/// speaker that said goodbye is not waited for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quorum {
    /// Speakers reached, this one included.
    pub reached: usize,
    /// Speakers known, this one included.
    pub known: usize,
}

impl Quorum {
    /// More than half of the known speakers are reached.
    pub fn is_majority(self) -> bool {
        self.reached.saturating_mul(2) > self.known
    }
}

/// A view change, for logs and the liveness view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The member.
    pub name: String,
    /// Its previous state, `None` when first learned.
    pub from: Option<MemberState>,
    /// Its new state.
    pub to: MemberState,
}

#[derive(Debug, Clone)]
struct Member {
    addr: SocketAddr,
    incarnation: u64,
    state: MemberState,
    /// When the member entered its current state (suspicion timer).
    since: Instant,
}

#[derive(Debug, Clone)]
struct Probe {
    target: String,
    seq: u64,
    sent: Instant,
    indirect: bool,
}

#[derive(Debug, Clone)]
struct Forward {
    seq: u64,
    reply_to: SocketAddr,
    reply_seq: u64,
    expires: Instant,
}

#[derive(Debug, Clone)]
struct Broadcast {
    update: Update,
    sent: u32,
}

/// One member's view of the group.
#[derive(Debug)]
pub struct Membership {
    me: String,
    incarnation: u64,
    tuning: Tuning,
    members: BTreeMap<String, Member>,
    seeds: Vec<SocketAddr>,
    seq: u64,
    probe: Option<Probe>,
    next_probe: Instant,
    next_seed_ping: Instant,
    /// Round-robin position among the probe candidates.
    cursor: usize,
    forwards: Vec<Forward>,
    broadcasts: Vec<Broadcast>,
    changes: Vec<Change>,
    left: bool,
    /// We just raised our incarnation to refute a suspicion; tell every live member now.
    refuted: bool,
}

impl Membership {
    /// A member named `me` starting at `incarnation` (the driver uses the boot time, so a
    /// restarted speaker outranks what the group remembers of its previous life), joining
    /// through the static `seeds`.
    pub fn new(
        me: String,
        incarnation: u64,
        seeds: Vec<SocketAddr>,
        tuning: Tuning,
        now: Instant,
    ) -> Self {
        Self {
            me,
            incarnation,
            tuning,
            members: BTreeMap::new(),
            seeds,
            seq: 0,
            probe: None,
            next_probe: now,
            next_seed_ping: now,
            cursor: 0,
            forwards: Vec::new(),
            broadcasts: Vec::new(),
            changes: Vec::new(),
            left: false,
            refuted: false,
        }
    }

    /// Replaces the seeds (peers discovered from the speaker pods as they come and go); new
    /// ones are pinged at the next tick rather than after a full seed interval, so a speaker
    /// joins as soon as it learns where its peers are.
    pub fn set_seeds(&mut self, seeds: Vec<SocketAddr>, now: Instant) {
        if seeds != self.seeds {
            self.seeds = seeds;
            self.next_seed_ping = now;
        }
    }

    /// This member's name.
    pub fn me(&self) -> &str {
        &self.me
    }

    /// This member's current incarnation.
    pub fn incarnation(&self) -> u64 {
        self.incarnation
    }

    /// Members remembered, this one excluded.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether no other member is remembered.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Every known member's state, this one included (always alive while running).
    pub fn view(&self) -> BTreeMap<String, MemberState> {
        let mut view: BTreeMap<String, MemberState> =
            self.members.iter().map(|(name, m)| (name.clone(), m.state)).collect();
        view.insert(
            self.me.clone(),
            if self.left { MemberState::Left } else { MemberState::Alive },
        );
        view
    }

    /// How many of the speakers it knows this member reaches ([`Quorum`]).
    pub fn quorum(&self) -> Quorum {
        let unseen = self
            .seeds
            .iter()
            .filter(|seed| !self.members.values().any(|m| m.addr == **seed))
            .count();
        let members = self.members.values().filter(|m| m.state != MemberState::Left);
        let (mut reached, mut known) = (1, 1 + unseen);
        for member in members {
            known += 1;
            if member.state.is_live() {
                reached += 1;
            }
        }
        Quorum { reached, known }
    }

    /// The view changes since the last call.
    pub fn take_changes(&mut self) -> Vec<Change> {
        std::mem::take(&mut self.changes)
    }

    /// When [`Membership::tick`] has work next.
    pub fn next_deadline(&self) -> Instant {
        let mut deadline = self.next_seed_ping;
        match &self.probe {
            Some(probe) if !probe.indirect => {
                deadline = deadline.min(probe.sent + self.tuning.ack_timeout);
            }
            Some(probe) => deadline = deadline.min(probe.sent + 2 * self.tuning.ack_timeout),
            None => deadline = deadline.min(self.next_probe),
        }
        for member in self.members.values() {
            if member.state == MemberState::Suspect {
                deadline = deadline.min(member.since + self.tuning.suspicion_timeout);
            }
        }
        if let Some(forward) = self.forwards.iter().map(|f| f.expires).min() {
            deadline = deadline.min(forward);
        }
        deadline
    }

    /// Runs the timers due at `now`: suspicion expiry, probe stages, seed pings.
    pub fn tick(&mut self, now: Instant) -> Vec<Outgoing> {
        let mut out = Vec::new();
        if self.left {
            return out;
        }
        let expired: Vec<(String, u64)> = self
            .members
            .iter()
            .filter(|(_, m)| {
                m.state == MemberState::Suspect && now >= m.since + self.tuning.suspicion_timeout
            })
            .map(|(name, m)| (name.clone(), m.incarnation))
            .collect();
        for (name, incarnation) in expired {
            self.declare(&name, incarnation, MemberState::Dead, now);
        }
        let prune_after = self.tuning.prune_after;
        self.members.retain(|_, m| m.state.is_live() || now < m.since + prune_after);
        let members = &self.members;
        self.broadcasts
            .retain(|b| members.contains_key(&b.update.name) || b.update.name == self.me);
        self.forwards.retain(|f| f.expires > now);

        if let Some(mut probe) = self.probe.take() {
            if now >= probe.sent + 2 * self.tuning.ack_timeout {
                if let Some(member) = self.members.get(&probe.target)
                    && member.state == MemberState::Alive
                {
                    let incarnation = member.incarnation;
                    self.declare(&probe.target, incarnation, MemberState::Suspect, now);
                }
            } else {
                if !probe.indirect && now >= probe.sent + self.tuning.ack_timeout {
                    probe.indirect = true;
                    out.extend(self.indirect(&probe));
                }
                self.probe = Some(probe);
            }
        }
        if self.probe.is_none() && now >= self.next_probe {
            self.next_probe = now + self.tuning.probe_interval;
            if let Some(target) = self.next_target() {
                let seq = self.next_seq();
                let addr = self.members[&target].addr;
                let message = self.message(Body::Ping { seq }, Some(&target), false);
                out.push(Outgoing { to: addr, message });
                self.probe = Some(Probe { target, seq, sent: now, indirect: false });
            }
        }
        if now >= self.next_seed_ping {
            self.next_seed_ping = now + self.tuning.seed_interval;
            let seeds: Vec<SocketAddr> = self
                .seeds
                .iter()
                .filter(|seed| {
                    !self.members.values().any(|m| m.addr == **seed && m.state.is_live())
                })
                .copied()
                .collect();
            for seed in seeds {
                let seq = self.next_seq();
                let message = self.message(Body::Ping { seq }, None, true);
                out.push(Outgoing { to: seed, message });
            }
        }
        out
    }

    /// Handles a message received from `source` (the datagram's source address, which is
    /// where the sender can be reached).
    pub fn receive(&mut self, source: SocketAddr, message: Message, now: Instant) -> Vec<Outgoing> {
        let mut out = Vec::new();
        if self.left || message.from == self.me {
            return out;
        }
        let known = self.members.get(&message.from).is_some_and(|m| m.state.is_live());
        let from = message.from.clone();
        // First-hand evidence beats hearsay, so it is applied first.
        self.apply(
            Update {
                name: from.clone(),
                addr: source,
                incarnation: message.incarnation,
                state: MemberState::Alive,
            },
            true,
            now,
        );
        for update in message.updates {
            self.apply(update, false, now);
        }
        if std::mem::take(&mut self.refuted) {
            // Piggybacking the refutation would reach a member only when we next exchange
            // messages with it, up to one probe period per member later, which can exceed
            // the suspicion timeout: a live speaker would be declared dead and its addresses
            // taken over. Every message carries our incarnation, so a ping to each live
            // member refutes at once (their acks are ignored: no probe waits for them).
            let live: Vec<(String, SocketAddr)> = self
                .members
                .iter()
                .filter(|(_, m)| m.state.is_live())
                .map(|(name, m)| (name.clone(), m.addr))
                .collect();
            for (name, addr) in live {
                let seq = self.next_seq();
                let ping = self.message(Body::Ping { seq }, Some(&name), false);
                out.push(Outgoing { to: addr, message: ping });
            }
        }
        match message.body {
            Body::Ping { seq } => {
                let reply = self.message(Body::Ack { seq }, Some(&from), !known);
                out.push(Outgoing { to: source, message: reply });
            }
            Body::Ack { seq } => {
                if self.probe.as_ref().is_some_and(|p| p.seq == seq) {
                    self.probe = None;
                } else if let Some(i) = self.forwards.iter().position(|f| f.seq == seq) {
                    let forward = self.forwards.swap_remove(i);
                    let relay = self.message(Body::Ack { seq: forward.reply_seq }, None, false);
                    out.push(Outgoing { to: forward.reply_to, message: relay });
                }
            }
            Body::PingReq { seq, target } => {
                let own = self.next_seq();
                self.forwards.push(Forward {
                    seq: own,
                    reply_to: source,
                    reply_seq: seq,
                    expires: now + 2 * self.tuning.ack_timeout,
                });
                let ping = self.message(Body::Ping { seq: own }, None, false);
                out.push(Outgoing { to: target, message: ping });
            }
            Body::Leave => {
                self.apply(
                    Update {
                        name: from,
                        addr: source,
                        incarnation: message.incarnation,
                        state: MemberState::Left,
                    },
                    true,
                    now,
                );
            }
        }
        out
    }

    /// Stops this member: `leave` to every live member, then silence.
    pub fn leave(&mut self) -> Vec<Outgoing> {
        if self.left {
            return Vec::new();
        }
        self.left = true;
        let live: Vec<SocketAddr> =
            self.members.values().filter(|m| m.state.is_live()).map(|m| m.addr).collect();
        live.into_iter()
            .map(|to| Outgoing {
                to,
                message: Message {
                    from: self.me.clone(),
                    incarnation: self.incarnation,
                    body: Body::Leave,
                    updates: Vec::new(),
                },
            })
            .collect()
    }

    fn next_seq(&mut self) -> u64 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    /// The next live member in name order after the last one probed.
    fn next_target(&mut self) -> Option<String> {
        let candidates: Vec<&String> =
            self.members.iter().filter(|(_, m)| m.state.is_live()).map(|(n, _)| n).collect();
        if candidates.is_empty() {
            return None;
        }
        self.cursor = (self.cursor + 1) % candidates.len();
        Some(candidates[self.cursor].clone())
    }

    /// `PingReq`s for a probe whose direct ack is late.
    fn indirect(&mut self, probe: &Probe) -> Vec<Outgoing> {
        let Some(target) = self.members.get(&probe.target).map(|m| m.addr) else {
            return Vec::new();
        };
        let helpers: Vec<(String, SocketAddr)> = self
            .members
            .iter()
            .filter(|(name, m)| m.state == MemberState::Alive && **name != probe.target)
            .map(|(name, m)| (name.clone(), m.addr))
            .collect();
        // Rotate the helpers with the cursor so one slow helper is not always the one asked.
        let count = helpers.len();
        (0..count.min(self.tuning.indirect_probes))
            .map(|i| helpers[(self.cursor + i) % count].clone())
            .collect::<Vec<_>>()
            .into_iter()
            .map(|(name, to)| {
                let body = Body::PingReq { seq: probe.seq, target };
                Outgoing { to, message: self.message(body, Some(&name), false) }
            })
            .collect()
    }

    /// Marks a member and queues the claim for dissemination.
    fn declare(&mut self, name: &str, incarnation: u64, state: MemberState, now: Instant) {
        if let Some(addr) = self.members.get(name).map(|m| m.addr) {
            self.apply(Update { name: name.to_owned(), addr, incarnation, state }, false, now);
        }
    }

    /// Merges one update into the view by the precedence rule. A member's address comes from
    /// first-hand evidence (the datagram source) when there is some; hearsay only introduces
    /// members we have no address for yet.
    fn apply(&mut self, update: Update, first_hand: bool, now: Instant) {
        if update.name == self.me {
            // Someone believes we are not alive: refute with a higher incarnation.
            if update.state != MemberState::Alive && update.incarnation >= self.incarnation {
                // A claim at the largest incarnation cannot be outranked; staying at it keeps
                // the member running (its own messages still prove it alive first-hand to
                // every peer that has not heard the claim) instead of overflowing.
                let Some(refutation) = update.incarnation.checked_add(1) else {
                    return;
                };
                self.incarnation = refutation;
                self.queue_self();
                self.refuted = true;
            }
            return;
        }
        let known_addr = self.members.get(&update.name).map(|m| m.addr);
        let previous = self.members.get(&update.name).map(|m| (m.incarnation, m.state));
        let accept = match previous {
            // A member that only described itself (unspecified address) is learned first-hand.
            None => !update.addr.ip().is_unspecified(),
            Some((incarnation, state)) => {
                update.incarnation > incarnation
                    || (update.incarnation == incarnation && update.state.rank() > state.rank())
            }
        };
        if !accept {
            return;
        }
        self.members.insert(
            update.name.clone(),
            Member {
                addr: match known_addr {
                    Some(addr) if !first_hand => addr,
                    _ => update.addr,
                },
                incarnation: update.incarnation,
                state: update.state,
                since: now,
            },
        );
        if previous.map(|(_, s)| s) != Some(update.state) {
            self.changes.push(Change {
                name: update.name.clone(),
                from: previous.map(|(_, s)| s),
                to: update.state,
            });
        }
        self.queue(update);
    }

    fn queue_self(&mut self) {
        // Our address is whatever the peers see as the datagram source; they keep the one they
        // have, and one that never heard from us learns it from our first datagram.
        let update = Update {
            name: self.me.clone(),
            addr: SocketAddr::from(([0, 0, 0, 0], 0)),
            incarnation: self.incarnation,
            state: MemberState::Alive,
        };
        self.queue(update);
    }

    fn queue(&mut self, update: Update) {
        self.broadcasts.retain(|b| b.update.name != update.name);
        self.broadcasts.push(Broadcast { update, sent: 0 });
    }

    /// A message from us carrying piggybacked updates: the least-sent queued ones, the
    /// recipient's own entry when we do not see it alive (so it can refute), or the whole view
    /// on first contact.
    fn message(&mut self, body: Body, to: Option<&str>, full: bool) -> Message {
        let mut updates = Vec::new();
        if full {
            updates.extend(self.members.iter().take(MAX_FULL_VIEW).map(|(name, m)| Update {
                name: name.clone(),
                addr: m.addr,
                incarnation: m.incarnation,
                state: m.state,
            }));
        } else {
            let n = u32::try_from(self.members.len() + 1).unwrap_or(u32::MAX);
            let limit = RETRANSMIT_MULT * (u32::BITS - n.leading_zeros()).max(1);
            self.broadcasts.sort_by_key(|b| b.sent);
            for broadcast in self.broadcasts.iter_mut().take(MAX_PIGGYBACK) {
                broadcast.sent += 1;
                updates.push(broadcast.update.clone());
            }
            self.broadcasts.retain(|b| b.sent < limit);
            if let Some(name) = to
                && let Some(m) = self.members.get(name)
                && m.state != MemberState::Alive
                && !updates.iter().any(|u| u.name == name)
            {
                updates.push(Update {
                    name: name.to_owned(),
                    addr: m.addr,
                    incarnation: m.incarnation,
                    state: m.state,
                });
            }
        }
        Message { from: self.me.clone(), incarnation: self.incarnation, body, updates }
    }
}

#[cfg(test)]
mod tests;
