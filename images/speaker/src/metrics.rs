//! The speaker's Prometheus metrics: one `prometheus-client` registry, every name prefixed
//! `metallb_speaker_`, failures counted by reason label.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::responder::{self, DropReason};

mod bgp;
pub use bgp::{BgpMetrics, PeerLabel};

/// Prefix of every metric name.
pub const PREFIX: &str = "metallb_speaker";

/// Interface and address family.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct IfaceFamily {
    /// Interface name.
    pub iface: String,
    /// `ipv4` or `ipv6`.
    pub family: &'static str,
}

/// Interface and drop reason.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct IfaceReason {
    /// Interface name.
    pub iface: String,
    /// [`DropReason::label`].
    pub reason: &'static str,
}

/// Address family alone.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct FamilyLabel {
    /// `ipv4` or `ipv6`.
    pub family: &'static str,
}

/// Drop reason alone.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ReasonLabel {
    /// The reason.
    pub reason: &'static str,
}

/// Gossip member state.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct StateLabel {
    /// `alive`, `suspect`, `dead` or `left`.
    pub state: &'static str,
}

/// Kind of a watched Kubernetes object.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct KindLabel {
    /// `SDNInternalL2LBService`, `MetalLoadBalancerClass` or `Pod`.
    pub kind: &'static str,
}

/// A class and one of its interfaces.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ClassIface {
    /// Class name.
    pub class: String,
    /// Interface name.
    pub iface: String,
}

/// Interface alone.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct IfaceLabel {
    /// Interface name.
    pub iface: String,
}

/// Every metric of the speaker, plus the readiness flag served on `/readyz`.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// ARP requests and neighbour solicitations received, answered or not.
    pub requests: Family<IfaceFamily, Counter>,
    /// ARP replies and solicited advertisements sent.
    pub replies: Family<IfaceFamily, Counter>,
    /// Gratuitous ARP frames (each form counts) and unsolicited advertisements sent.
    pub gratuitous: Family<IfaceFamily, Counter>,
    /// Frames not answered, by reason.
    pub drops: Family<IfaceReason, Counter>,
    /// Addresses this node currently owns.
    pub owned: Family<FamilyLabel, Gauge>,
    /// Interfaces the speaker currently listens on.
    pub interfaces: Gauge,
    /// Desired-state loads applied.
    pub source_loads: Counter,
    /// Desired-state loads rejected (the last good state stays in force).
    pub source_errors: Counter,
    /// Failed sends and receive errors, by interface.
    pub link_errors: Family<IfaceLabel, Counter>,
    /// Gossip members by state in this speaker's view, itself included.
    pub gossip_members: Family<StateLabel, Gauge>,
    /// Addresses this node started announcing as a backup of a dead node.
    pub takeovers: Counter,
    /// Gossip datagrams dropped, by reason.
    pub gossip_dropped: Family<ReasonLabel, Counter>,
    /// Failed Kubernetes lists and watches, by kind (each is retried with backoff).
    pub watch_errors: Family<KindLabel, Counter>,
    /// Placed children not announced, by reason (`IgnoreReason`).
    pub ignored_children: Family<ReasonLabel, Gauge>,
    /// Interfaces named by a class this node may announce for, missing on this node.
    pub missing_interfaces: Family<ClassIface, Gauge>,
    /// Addresses this node owns but answers on no interface.
    pub unanswered: Gauge,
    /// Children placed on this node whose class names an interface it lacks or has down
    /// (each carries the condition `NodeCanAnnounce=False`).
    pub cannot_announce: Gauge,
    /// `NodeCanAnnounce` conditions written or removed on children (server-side apply).
    pub condition_writes: Counter,
    /// `NodeCanAnnounce` writes refused by the API server or timed out.
    pub condition_errors: Counter,
    /// Speakers this one reaches in gossip, itself included.
    pub gossip_reached: Gauge,
    /// Speakers this one knows of (members not left, and peers not heard from yet).
    pub gossip_known: Gauge,
    /// HTTP connections refused because the bound was reached.
    pub http_refused: Counter,
    /// Key ring reloads that failed (the last good ring stays in force).
    pub key_errors: Counter,
    /// BGP mode's sessions, BFD and left-out routes.
    pub bgp: BgpMetrics,
    ready: AtomicBool,
    /// Gossip reaches a majority of the known speakers (true without gossip).
    quorum: AtomicBool,
    /// What `/readyz` says besides ready or not: degraded parts of the data plane.
    notes: Mutex<Vec<String>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A registry with every metric registered.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix(PREFIX);
        let requests = Family::<IfaceFamily, Counter>::default();
        let replies = Family::<IfaceFamily, Counter>::default();
        let gratuitous = Family::<IfaceFamily, Counter>::default();
        let drops = Family::<IfaceReason, Counter>::default();
        let owned = Family::<FamilyLabel, Gauge>::default();
        let interfaces = Gauge::default();
        let source_loads = Counter::default();
        let source_errors = Counter::default();
        let link_errors = Family::<IfaceLabel, Counter>::default();
        let gossip_members = Family::<StateLabel, Gauge>::default();
        let takeovers = Counter::default();
        let gossip_dropped = Family::<ReasonLabel, Counter>::default();
        let watch_errors = Family::<KindLabel, Counter>::default();
        let ignored_children = Family::<ReasonLabel, Gauge>::default();
        let missing_interfaces = Family::<ClassIface, Gauge>::default();
        let unanswered = Gauge::default();
        let cannot_announce = Gauge::default();
        let condition_writes = Counter::default();
        let condition_errors = Counter::default();
        let gossip_reached = Gauge::default();
        let gossip_known = Gauge::default();
        let http_refused = Counter::default();
        let key_errors = Counter::default();
        registry.register(
            "requests_received",
            "ARP requests and neighbour solicitations received",
            requests.clone(),
        );
        registry.register(
            "replies_sent",
            "ARP replies and solicited neighbour advertisements sent",
            replies.clone(),
        );
        registry.register(
            "gratuitous_sent",
            "Gratuitous ARP frames and unsolicited neighbour advertisements sent",
            gratuitous.clone(),
        );
        registry.register("drops", "Frames not answered, by reason", drops.clone());
        registry.register("owned_ips", "Addresses this node announces", owned.clone());
        registry.register("interfaces", "Interfaces listened on", interfaces.clone());
        registry.register("source_loads", "Desired-state loads applied", source_loads.clone());
        registry.register(
            "source_errors",
            "Desired-state loads rejected; the last good state stays in force",
            source_errors.clone(),
        );
        registry.register(
            "link_errors",
            "Packet socket send or receive errors",
            link_errors.clone(),
        );
        registry.register(
            "gossip_members",
            "Gossip members by state in this speaker's view, itself included",
            gossip_members.clone(),
        );
        registry.register(
            "takeovers",
            "Addresses this node started announcing as the first live backup of a dead node",
            takeovers.clone(),
        );
        registry.register(
            "gossip_dropped",
            "Gossip datagrams dropped, by reason",
            gossip_dropped.clone(),
        );
        registry.register(
            "watch_errors",
            "Failed Kubernetes lists and watches, by kind; the last view stays in force",
            watch_errors.clone(),
        );
        registry.register(
            "ignored_children",
            "Placed children not announced, by reason: not written by the module, no or unknown \
             class, IP outside the class's pool",
            ignored_children.clone(),
        );
        registry.register(
            "missing_interfaces",
            "Interfaces named by a class this node may announce for that do not exist here",
            missing_interfaces.clone(),
        );
        registry.register(
            "unanswered_ips",
            "Addresses this node owns but answers on no interface (their class's interfaces are \
             missing or down)",
            unanswered.clone(),
        );
        registry.register(
            "children_cannot_announce",
            "Children placed on this node whose class names an interface it lacks or has down; \
             each carries the condition NodeCanAnnounce=False",
            cannot_announce.clone(),
        );
        registry.register(
            "child_condition_writes",
            "NodeCanAnnounce conditions written or removed on children",
            condition_writes.clone(),
        );
        registry.register(
            "child_condition_errors",
            "NodeCanAnnounce condition writes refused by the API server or timed out; retried",
            condition_errors.clone(),
        );
        registry.register(
            "gossip_reached_members",
            "Speakers this one reaches in gossip (alive or suspect), itself included",
            gossip_reached.clone(),
        );
        registry.register(
            "gossip_known_members",
            "Speakers this one knows of: members not left and peers not heard from yet; ready \
             and taking over only while it reaches more than half of them",
            gossip_known.clone(),
        );
        registry.register(
            "http_refused",
            "HTTP connections closed at once because the connection bound was reached",
            http_refused.clone(),
        );
        registry.register(
            "gossip_key_errors",
            "Gossip key ring reloads that failed; the last good ring stays in force",
            key_errors.clone(),
        );
        for family in ["ipv4", "ipv6"] {
            owned.get_or_create(&FamilyLabel { family }).set(0);
        }
        let bgp = BgpMetrics::register(&mut registry);
        Self {
            bgp,
            registry,
            requests,
            replies,
            gratuitous,
            drops,
            owned,
            interfaces,
            source_loads,
            source_errors,
            link_errors,
            gossip_members,
            takeovers,
            gossip_dropped,
            watch_errors,
            ignored_children,
            missing_interfaces,
            unanswered,
            cannot_announce,
            condition_writes,
            condition_errors,
            gossip_reached,
            gossip_known,
            http_refused,
            key_errors,
            ready: AtomicBool::new(false),
            quorum: AtomicBool::new(true),
            notes: Mutex::new(Vec::new()),
        }
    }

    /// Counts a drop.
    pub fn count_drop(&self, iface: &str, reason: DropReason) {
        self.drops
            .get_or_create(&IfaceReason { iface: iface.to_owned(), reason: reason.label() })
            .inc();
    }

    /// Counts a frame of a family on an interface in `family_counter`.
    pub fn count(
        family_counter: &Family<IfaceFamily, Counter>,
        iface: &str,
        family: responder::Family,
    ) {
        family_counter
            .get_or_create(&IfaceFamily { iface: iface.to_owned(), family: family.label() })
            .inc();
    }

    /// Marks the speaker ready (sockets open, first desired state applied).
    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::Relaxed);
    }

    /// Whether `/readyz` answers 200: the first state is applied and, with gossip, this
    /// speaker reaches a majority of the speakers it knows. A speaker cut off from gossip is
    /// not ready, so the kubelet reports it and the hooks move its addresses away.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed) && self.quorum.load(Ordering::Relaxed)
    }

    /// Records gossip health: `reached` of `known` speakers, and whether that is a majority.
    pub fn set_gossip_health(&self, reached: usize, known: usize, quorum: bool) {
        self.gossip_reached.set(i64::try_from(reached).unwrap_or(i64::MAX));
        self.gossip_known.set(i64::try_from(known).unwrap_or(i64::MAX));
        self.quorum.store(quorum, Ordering::Relaxed);
    }

    /// Replaces the notes shown on `/readyz`.
    pub fn set_notes(&self, notes: Vec<String>) {
        *self.notes.lock().unwrap_or_else(PoisonError::into_inner) = notes;
    }

    /// The `/readyz` body: the verdict, why when not ready, then the notes.
    pub fn readiness_text(&self) -> String {
        let mut text = String::new();
        if !self.ready.load(Ordering::Relaxed) {
            text.push_str("not ready: no desired state applied yet\n");
        } else if !self.quorum.load(Ordering::Relaxed) {
            text.push_str(&format!(
                "not ready: gossip reaches {} of {} known speakers, not a majority\n",
                self.gossip_reached.get(),
                self.gossip_known.get()
            ));
        } else {
            text.push_str("ready\n");
        }
        for note in self.notes.lock().unwrap_or_else(PoisonError::into_inner).iter() {
            text.push_str("warning: ");
            text.push_str(note);
            text.push('\n');
        }
        text
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail; an encoder error would only truncate the page.
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposes_prefixed_names() {
        let m = Metrics::new();
        m.count_drop("eth0", DropReason::NotOurs);
        Metrics::count(&m.requests, "eth0", responder::Family::Ipv4);
        Metrics::count(&m.replies, "eth0", responder::Family::Ipv6);
        Metrics::count(&m.gratuitous, "eth0", responder::Family::Ipv4);
        m.source_errors.inc();
        let text = m.encode();
        for line in [
            r#"metallb_speaker_drops_total{iface="eth0",reason="not_ours"} 1"#,
            r#"metallb_speaker_requests_received_total{iface="eth0",family="ipv4"} 1"#,
            r#"metallb_speaker_replies_sent_total{iface="eth0",family="ipv6"} 1"#,
            r#"metallb_speaker_gratuitous_sent_total{iface="eth0",family="ipv4"} 1"#,
            r#"metallb_speaker_owned_ips{family="ipv4"} 0"#,
            "metallb_speaker_source_errors_total 1",
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
        assert!(!m.is_ready());
        m.set_ready();
        assert!(m.is_ready());
    }
}
