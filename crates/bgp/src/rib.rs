//! Adj-RIB-Out: what one session should announce, what it has announced, and the fewest
//! UPDATEs that take the peer from one to the other.
//!
//! ```text
//!  desired: prefix -> RouteAttrs ──export(session facts)──► prefix -> wire attributes
//!                                                                 │ diff against `sent`
//!                    withdrawals (packed) + announcements grouped by equal attributes (packed)
//! ```
//!
//! Attributes are compared in their encoded form, so anything that changes what goes on the
//! wire (a community, the graceful-shutdown drain, a new next hop) re-sends exactly the
//! prefixes it touches, and two routes with equal attributes always share UPDATEs.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

use crate::wire::{
    AS_TRANS, AfiSafi, AsSegment, Codec, EncodeError, GRACEFUL_SHUTDOWN, HEADER_LEN,
    LargeCommunity, MAX_MESSAGE_LEN, Message, MpNextHop, MpReach, MpUnreach, Origin, PathAttribute,
    Update, encode, encoded_prefix_len,
};

/// LOCAL_PREF sent on iBGP when the route names none: the customary default that RFC 4271
/// leaves to configuration and every router we test against uses.
pub const DEFAULT_LOCAL_PREF: u32 = 100;

/// The attributes of one route towards one peer, as the caller decides them.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RouteAttrs {
    /// Next hop; `None` (or one of the other family) means the session's own address.
    pub next_hop: Option<IpAddr>,
    /// LOCAL_PREF on iBGP sessions; ignored on eBGP (RFC 4271 §5.1.5).
    pub local_pref: Option<u32>,
    /// Standard communities (RFC 1997).
    pub communities: BTreeSet<u32>,
    /// Large communities (RFC 8092).
    pub large_communities: BTreeSet<LargeCommunity>,
}

/// The session facts that turn [`RouteAttrs`] into wire attributes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Export {
    /// Our AS number.
    pub my_as: u32,
    /// The peer is in our AS.
    pub ibgp: bool,
    /// AS_PATH carries 4-octet AS numbers.
    pub codec: Codec,
    /// Families both sides negotiated.
    pub families: BTreeSet<AfiSafi>,
    /// The default IPv4 next hop: the session's local address when it is IPv4.
    pub next_hop_v4: Option<Ipv4Addr>,
    /// The default IPv6 next hop: the session's local address when it is IPv6.
    pub next_hop_v6: Option<Ipv6Addr>,
    /// Draining for graceful shutdown (RFC 8326): every route carries GRACEFUL_SHUTDOWN and, on
    /// iBGP, LOCAL_PREF 0.
    pub graceful_shutdown: bool,
}

impl Export {
    /// The wire attributes of a route for `prefix`, without its NLRI; `None` when this session
    /// cannot carry it (family not negotiated, no next hop of the prefix's family).
    pub fn attributes(&self, prefix: &IpNet, route: &RouteAttrs) -> Option<Vec<PathAttribute>> {
        let family = AfiSafi::of(prefix);
        if !self.families.contains(&family) {
            return None;
        }
        let mut attrs = vec![PathAttribute::Origin(Origin::Igp)];
        let wide = self.my_as > u32::from(u16::MAX) && !self.codec.four_octet_as;
        attrs.push(PathAttribute::AsPath(match (self.ibgp, wide) {
            (true, _) => vec![],
            // RFC 6793 §4.2.2: towards a 2-octet speaker, AS_TRANS stands in AS_PATH.
            (false, true) => vec![AsSegment::Sequence(vec![u32::from(AS_TRANS)])],
            (false, false) => vec![AsSegment::Sequence(vec![self.my_as])],
        }));
        let mp_next_hop = match prefix {
            IpNet::V4(_) => {
                let nh = match route.next_hop {
                    Some(IpAddr::V4(nh)) => nh,
                    _ => self.next_hop_v4?,
                };
                attrs.push(PathAttribute::NextHop(nh));
                None
            }
            IpNet::V6(_) => Some(match route.next_hop {
                Some(IpAddr::V6(nh)) => nh,
                _ => self.next_hop_v6?,
            }),
        };
        if self.ibgp {
            let lp = route.local_pref.unwrap_or(DEFAULT_LOCAL_PREF);
            // RFC 8326 §4.2: without the community understood, LOCAL_PREF 0 still steers iBGP.
            attrs.push(PathAttribute::LocalPref(if self.graceful_shutdown { 0 } else { lp }));
        }
        let mut communities = route.communities.clone();
        if self.graceful_shutdown {
            communities.insert(GRACEFUL_SHUTDOWN);
        }
        if !communities.is_empty() {
            attrs.push(PathAttribute::Communities(communities.into_iter().collect()));
        }
        if let Some(global) = mp_next_hop {
            attrs.push(PathAttribute::MpReach(MpReach {
                family,
                next_hop: MpNextHop::V6 { global, link_local: None },
                nlri: Vec::new(),
            }));
        }
        if wide {
            attrs.push(PathAttribute::As4Path(vec![AsSegment::Sequence(vec![self.my_as])]));
        }
        if !route.large_communities.is_empty() {
            attrs.push(PathAttribute::LargeCommunities(
                route.large_communities.iter().copied().collect(),
            ));
        }
        Some(attrs)
    }
}

/// A route's wire attributes and their encoding (an UPDATE without NLRI), or `None` when the
/// session cannot carry it.
type Exported = Option<(Vec<PathAttribute>, Vec<u8>)>;

/// What one call to [`AdjRibOut::updates`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Diff {
    /// The UPDATEs to send, in order.
    pub updates: Vec<Update>,
    /// Prefixes announced or re-announced.
    pub announced: usize,
    /// Prefixes withdrawn.
    pub withdrawn: usize,
    /// Desired prefixes this session cannot carry (see [`Export::attributes`]).
    pub unexportable: usize,
}

/// One session's routes: desired and sent.
#[derive(Clone, Debug, Default)]
pub struct AdjRibOut {
    desired: BTreeMap<IpNet, RouteAttrs>,
    /// Prefix → the encoded attribute UPDATE it was last announced with.
    sent: BTreeMap<IpNet, Vec<u8>>,
}

impl AdjRibOut {
    /// Replaces the desired routes; prefixes are stored without host bits.
    pub fn set_desired(&mut self, desired: BTreeMap<IpNet, RouteAttrs>) {
        self.desired = desired.into_iter().map(|(p, a)| (p.trunc(), a)).collect();
    }

    /// The desired routes.
    pub fn desired(&self) -> &BTreeMap<IpNet, RouteAttrs> {
        &self.desired
    }

    /// How many prefixes the peer has from us.
    pub fn sent_len(&self) -> usize {
        self.sent.len()
    }

    /// Forgets what was sent: the session went down and the peer dropped our routes.
    pub fn clear_sent(&mut self) {
        self.sent.clear();
    }

    /// Forgets what was sent of one family, so that the next [`AdjRibOut::updates`] sends it all
    /// again: the answer to ROUTE-REFRESH (RFC 2918 §4).
    pub fn forget_family(&mut self, family: AfiSafi) {
        // The peer still has the routes: an empty key (no encoding is empty) makes each one
        // differ from its desired state, so it is re-announced, or withdrawn if no longer
        // desired.
        for (_, key) in self.sent.iter_mut().filter(|(p, _)| AfiSafi::of(p) == family) {
            key.clear();
        }
    }

    /// The UPDATEs that bring the peer from what was sent to what is desired, and records them
    /// as sent.
    pub fn updates(&mut self, export: &Export) -> Result<Diff, EncodeError> {
        let mut diff = Diff::default();
        // Encoded attributes (an UPDATE without NLRI) → (attributes, prefixes).
        let mut groups: BTreeMap<Vec<u8>, (Vec<PathAttribute>, Vec<IpNet>)> = BTreeMap::new();
        let mut target: BTreeMap<IpNet, Vec<u8>> = BTreeMap::new();
        // Export depends on the prefix only through its family, so routes sharing attributes
        // share one export and one encoding: a table of 10k routes in a few groups costs a
        // few encodings, not 10k.
        let mut exported: BTreeMap<(AfiSafi, &RouteAttrs), Exported> = BTreeMap::new();
        for (prefix, route) in &self.desired {
            let family = AfiSafi::of(prefix);
            let entry = match exported.entry((family, route)) {
                std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::btree_map::Entry::Vacant(v) => {
                    let done = match export.attributes(prefix, route) {
                        Some(attrs) => {
                            let update = Update { attributes: attrs.clone(), ..Update::default() };
                            Some((attrs, encode(&Message::Update(update), export.codec)?))
                        }
                        None => None,
                    };
                    v.insert(done)
                }
            };
            let Some((attrs, key)) = entry.as_ref() else {
                diff.unexportable += 1;
                continue;
            };
            if self.sent.get(prefix) != Some(key) {
                groups
                    .entry(key.clone())
                    .or_insert_with(|| (attrs.clone(), Vec::new()))
                    .1
                    .push(*prefix);
                diff.announced += 1;
            }
            target.insert(*prefix, key.clone());
        }
        let (mut gone_v4, mut gone_v6) = (Vec::new(), Vec::new());
        for prefix in self.sent.keys().filter(|p| !target.contains_key(p)) {
            match prefix {
                IpNet::V4(p) => gone_v4.push(*p),
                IpNet::V6(_) => gone_v6.push(*prefix),
            }
        }
        diff.withdrawn = gone_v4.len() + gone_v6.len();
        // Withdrawn Routes: 2 length fields after the header (RFC 4271 §4.3).
        for chunk in
            pack(&gone_v4.iter().map(|p| IpNet::V4(*p)).collect::<Vec<_>>(), |n| HEADER_LEN + 4 + n)
        {
            let withdrawn = chunk.iter().filter_map(|p| match p {
                IpNet::V4(p) => Some(*p),
                IpNet::V6(_) => None,
            });
            diff.updates.push(Update { withdrawn: withdrawn.collect(), ..Update::default() });
        }
        // MP_UNREACH_NLRI: AFI and SAFI (3 octets) in an attribute with a 3 or 4 octet header.
        for chunk in pack(&gone_v6, |n| HEADER_LEN + 4 + mp_attribute_len(3 + n)) {
            diff.updates.push(Update {
                attributes: vec![PathAttribute::MpUnreach(MpUnreach {
                    family: AfiSafi::IPV6_UNICAST,
                    withdrawn: chunk.to_vec(),
                })],
                ..Update::default()
            });
        }
        for (key, (attrs, prefixes)) in groups {
            diff.updates.extend(announcements(&key, attrs, &prefixes));
        }
        self.sent = target;
        Ok(diff)
    }
}

/// An attribute's size on the wire for a value of `value_len` octets: the Extended Length bit
/// adds one length octet above 255 (RFC 4271 §4.3).
fn mp_attribute_len(value_len: usize) -> usize {
    value_len + if value_len > 255 { 4 } else { 3 }
}

/// UPDATEs announcing `prefixes` with `attrs`, `key` being the encoding without NLRI.
fn announcements(key: &[u8], attrs: Vec<PathAttribute>, prefixes: &[IpNet]) -> Vec<Update> {
    let mp = attrs.iter().position(|a| matches!(a, PathAttribute::MpReach(_)));
    match mp {
        None => pack(prefixes, |n| key.len() + n)
            .map(|chunk| Update {
                attributes: attrs.clone(),
                nlri: chunk
                    .iter()
                    .filter_map(|p| match p {
                        IpNet::V4(p) => Some(*p),
                        IpNet::V6(_) => None,
                    })
                    .collect(),
                ..Update::default()
            })
            .collect(),
        Some(i) => {
            let PathAttribute::MpReach(empty) = &attrs[i] else { return Vec::new() };
            // MP_REACH value without NLRI: AFI, SAFI, next hop length, next hop, reserved.
            let value = 5 + match empty.next_hop {
                MpNextHop::V4(_) => 4,
                MpNextHop::V6 { link_local: None, .. } => 16,
                MpNextHop::V6 { link_local: Some(_), .. } => 32,
            };
            let rest = key.len() - mp_attribute_len(value);
            pack(prefixes, |n| rest + mp_attribute_len(value + n))
                .map(|chunk| {
                    let mut attrs = attrs.clone();
                    attrs[i] =
                        PathAttribute::MpReach(MpReach { nlri: chunk.to_vec(), ..empty.clone() });
                    Update { attributes: attrs, ..Update::default() }
                })
                .collect()
        }
    }
}

/// Splits `prefixes` greedily into chunks whose message size, `size(octets of the chunk's
/// prefixes)`, stays within 4096. Greedy is optimal here: sizes only grow with the chunk.
fn pack<'a>(
    prefixes: &'a [IpNet],
    size: impl Fn(usize) -> usize + 'a,
) -> impl Iterator<Item = &'a [IpNet]> + 'a {
    let mut start = 0;
    std::iter::from_fn(move || {
        if start >= prefixes.len() {
            return None;
        }
        let mut octets = 0;
        let mut end = start;
        while end < prefixes.len() {
            let next = octets + encoded_prefix_len(&prefixes[end]);
            if size(next) > MAX_MESSAGE_LEN && end > start {
                break;
            }
            octets = next;
            end += 1;
        }
        let chunk = &prefixes[start..end];
        start = end;
        Some(chunk)
    })
}

#[cfg(test)]
mod tests;
