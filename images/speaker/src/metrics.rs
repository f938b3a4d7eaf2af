//! The speaker's Prometheus metrics: one `prometheus-client` registry, every name prefixed
//! `metallb_speaker_`, failures counted by reason label.

use std::sync::atomic::{AtomicBool, Ordering};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::responder::{self, DropReason};

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
    ready: AtomicBool,
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
        for family in ["ipv4", "ipv6"] {
            owned.get_or_create(&FamilyLabel { family }).set(0);
        }
        Self {
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
            ready: AtomicBool::new(false),
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

    /// Whether `/readyz` answers 200.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
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
