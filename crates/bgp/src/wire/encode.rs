//! Messages to bytes, following the layouts of RFC 4271 §4 and the extensions' RFCs.

use ipnet::IpNet;

use super::{
    AfiSafi, AsSegment, Capability, Codec, HEADER_LEN, MAX_MESSAGE_LEN, Message, MpNextHop, Open,
    Origin, PathAttribute, Update,
};

/// Why a message could not be encoded. Each is a bug of the caller or an input too large to
/// send, never a reason to panic.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The message exceeds 4096 octets (RFC 4271 §4.1).
    #[error("message of {0} octets exceeds the 4096-octet limit")]
    TooLong(usize),
    /// An AS number above 65535 in a 2-octet AS_PATH; the caller must apply RFC 6793 §4.2.2.
    #[error("AS {0} does not fit a 2-octet AS_PATH")]
    AsnTooWide(u32),
    /// A length that must fit in one octet does not.
    #[error("{0} is longer than 255 octets")]
    FieldTooLong(&'static str),
    /// A prefix or next hop of another family than its attribute's.
    #[error("{0} does not belong to the attribute's address family")]
    FamilyMismatch(&'static str),
}

/// Message type codes (RFC 4271 §4.1, RFC 2918 §3).
pub(super) mod kind {
    pub(crate) const OPEN: u8 = 1;
    pub(crate) const UPDATE: u8 = 2;
    pub(crate) const NOTIFICATION: u8 = 3;
    pub(crate) const KEEPALIVE: u8 = 4;
    pub(crate) const ROUTE_REFRESH: u8 = 5;
}

/// Attribute flags (RFC 4271 §4.3).
pub(super) mod flag {
    pub(crate) const OPTIONAL: u8 = 0x80;
    pub(crate) const TRANSITIVE: u8 = 0x40;
    pub(crate) const EXTENDED_LENGTH: u8 = 0x10;
}

/// Attribute type codes (IANA "BGP Path Attributes").
pub(super) mod attr {
    pub(crate) const ORIGIN: u8 = 1;
    pub(crate) const AS_PATH: u8 = 2;
    pub(crate) const NEXT_HOP: u8 = 3;
    pub(crate) const MED: u8 = 4;
    pub(crate) const LOCAL_PREF: u8 = 5;
    pub(crate) const ATOMIC_AGGREGATE: u8 = 6;
    pub(crate) const AGGREGATOR: u8 = 7;
    pub(crate) const COMMUNITIES: u8 = 8;
    pub(crate) const MP_REACH: u8 = 14;
    pub(crate) const MP_UNREACH: u8 = 15;
    pub(crate) const AS4_PATH: u8 = 17;
    pub(crate) const LARGE_COMMUNITIES: u8 = 32;
}

/// Capability codes (IANA "Capability Codes").
pub(super) mod cap {
    pub(crate) const MULTIPROTOCOL: u8 = 1;
    pub(crate) const ROUTE_REFRESH: u8 = 2;
    pub(crate) const GRACEFUL_RESTART: u8 = 64;
    pub(crate) const FOUR_OCTET_AS: u8 = 65;
}

/// The Capabilities optional parameter type (RFC 5492 §4).
pub(super) const PARAM_CAPABILITIES: u8 = 2;

/// Encodes one message, header included.
pub fn encode(message: &Message, codec: Codec) -> Result<Vec<u8>, EncodeError> {
    let mut out = vec![0xff; 16];
    out.extend_from_slice(&[0, 0, 0]);
    let kind = match message {
        Message::Open(open) => {
            encode_open(open, &mut out)?;
            kind::OPEN
        }
        Message::Update(update) => {
            encode_update(update, codec, &mut out)?;
            kind::UPDATE
        }
        Message::Notification(n) => {
            out.extend_from_slice(&[n.code, n.subcode]);
            out.extend_from_slice(&n.data);
            kind::NOTIFICATION
        }
        Message::Keepalive => kind::KEEPALIVE,
        Message::RouteRefresh(r) => {
            out.extend_from_slice(&r.family.afi.to_be_bytes());
            out.extend_from_slice(&[r.subtype, r.family.safi]);
            kind::ROUTE_REFRESH
        }
    };
    if out.len() > MAX_MESSAGE_LEN {
        return Err(EncodeError::TooLong(out.len()));
    }
    let len = u16::try_from(out.len()).map_err(|_| EncodeError::TooLong(out.len()))?;
    out[16..18].copy_from_slice(&len.to_be_bytes());
    out[18] = kind;
    debug_assert!(out.len() >= HEADER_LEN);
    Ok(out)
}

fn encode_open(open: &Open, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    out.push(open.version);
    out.extend_from_slice(&open.my_as.to_be_bytes());
    out.extend_from_slice(&open.hold_time.to_be_bytes());
    out.extend_from_slice(&open.bgp_id.octets());
    let mut caps = Vec::new();
    for c in &open.capabilities {
        let (code, value) = capability_value(c);
        caps.push(code);
        caps.push(u8::try_from(value.len()).map_err(|_| EncodeError::FieldTooLong("capability"))?);
        caps.extend_from_slice(&value);
    }
    if caps.is_empty() {
        out.push(0);
        return Ok(());
    }
    // All capabilities in one Capabilities parameter, as RFC 5492 §4 allows.
    let caps_len =
        u8::try_from(caps.len()).map_err(|_| EncodeError::FieldTooLong("capabilities"))?;
    let params_len =
        caps_len.checked_add(2).ok_or(EncodeError::FieldTooLong("optional parameters"))?;
    out.extend_from_slice(&[params_len, PARAM_CAPABILITIES, caps_len]);
    out.extend_from_slice(&caps);
    Ok(())
}

fn capability_value(c: &Capability) -> (u8, Vec<u8>) {
    match c {
        Capability::MultiProtocol(f) => {
            let [a, b] = f.afi.to_be_bytes();
            (cap::MULTIPROTOCOL, vec![a, b, 0, f.safi])
        }
        Capability::RouteRefresh => (cap::ROUTE_REFRESH, Vec::new()),
        Capability::GracefulRestart(gr) => {
            // RFC 4724 §3: the top bit is Restart State, the low 12 bits the Restart Time.
            let mut head = gr.restart_time & 0x0fff;
            if gr.restart_state {
                head |= 0x8000;
            }
            let mut v = head.to_be_bytes().to_vec();
            for (f, forwarding) in &gr.families {
                v.extend_from_slice(&f.afi.to_be_bytes());
                v.push(f.safi);
                // The F bit: forwarding state preserved across the restart.
                v.push(if *forwarding { 0x80 } else { 0 });
            }
            (cap::GRACEFUL_RESTART, v)
        }
        Capability::FourOctetAs(asn) => (cap::FOUR_OCTET_AS, asn.to_be_bytes().to_vec()),
        Capability::Unknown { code, value } => (*code, value.clone()),
    }
}

fn encode_update(update: &Update, codec: Codec, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let mut withdrawn = Vec::new();
    for p in &update.withdrawn {
        push_prefix(&IpNet::V4(*p), &mut withdrawn);
    }
    push_len16(&withdrawn, out)?;
    out.extend_from_slice(&withdrawn);
    let mut attrs = Vec::new();
    for a in &update.attributes {
        encode_attribute(a, codec, &mut attrs)?;
    }
    push_len16(&attrs, out)?;
    out.extend_from_slice(&attrs);
    for p in &update.nlri {
        push_prefix(&IpNet::V4(*p), out);
    }
    Ok(())
}

fn push_len16(field: &[u8], out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let len = u16::try_from(field.len()).map_err(|_| EncodeError::TooLong(field.len()))?;
    out.extend_from_slice(&len.to_be_bytes());
    Ok(())
}

/// The octets a prefix takes in an NLRI field: its length octet and the significant octets.
pub fn encoded_prefix_len(prefix: &IpNet) -> usize {
    1 + usize::from(prefix.prefix_len()).div_ceil(8)
}

/// Appends a prefix as (length, significant octets), RFC 4271 §4.3.
fn push_prefix(prefix: &IpNet, out: &mut Vec<u8>) {
    let len = prefix.prefix_len();
    let octets = usize::from(len).div_ceil(8);
    out.push(len);
    match prefix.trunc() {
        IpNet::V4(p) => out.extend_from_slice(&p.addr().octets()[..octets]),
        IpNet::V6(p) => out.extend_from_slice(&p.addr().octets()[..octets]),
    }
}

fn encode_attribute(a: &PathAttribute, codec: Codec, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    use flag::{OPTIONAL, TRANSITIVE};
    let (flags, code, value) = match a {
        PathAttribute::Origin(o) => {
            let v = match o {
                Origin::Igp => 0,
                Origin::Egp => 1,
                Origin::Incomplete => 2,
            };
            (TRANSITIVE, attr::ORIGIN, vec![v])
        }
        PathAttribute::AsPath(segments) => {
            (TRANSITIVE, attr::AS_PATH, as_path(segments, codec.four_octet_as)?)
        }
        PathAttribute::NextHop(nh) => (TRANSITIVE, attr::NEXT_HOP, nh.octets().to_vec()),
        PathAttribute::MultiExitDisc(m) => (OPTIONAL, attr::MED, m.to_be_bytes().to_vec()),
        PathAttribute::LocalPref(lp) => (TRANSITIVE, attr::LOCAL_PREF, lp.to_be_bytes().to_vec()),
        PathAttribute::Communities(cs) => (
            OPTIONAL | TRANSITIVE,
            attr::COMMUNITIES,
            cs.iter().flat_map(|c| c.to_be_bytes()).collect(),
        ),
        PathAttribute::MpReach(r) => {
            let mut v = family_octets(r.family);
            match (r.family, r.next_hop) {
                (AfiSafi::IPV4_UNICAST, MpNextHop::V4(nh)) => {
                    v.push(4);
                    v.extend_from_slice(&nh.octets());
                }
                (AfiSafi::IPV6_UNICAST, MpNextHop::V6 { global, link_local }) => {
                    v.push(if link_local.is_some() { 32 } else { 16 });
                    v.extend_from_slice(&global.octets());
                    if let Some(ll) = link_local {
                        v.extend_from_slice(&ll.octets());
                    }
                }
                _ => return Err(EncodeError::FamilyMismatch("MP_REACH_NLRI next hop")),
            }
            // Reserved octet, formerly the SNPA count (RFC 4760 §3).
            v.push(0);
            push_family_prefixes(r.family, &r.nlri, &mut v)?;
            (OPTIONAL, attr::MP_REACH, v)
        }
        PathAttribute::MpUnreach(u) => {
            let mut v = family_octets(u.family);
            push_family_prefixes(u.family, &u.withdrawn, &mut v)?;
            (OPTIONAL, attr::MP_UNREACH, v)
        }
        PathAttribute::As4Path(segments) => {
            (OPTIONAL | TRANSITIVE, attr::AS4_PATH, as_path(segments, true)?)
        }
        PathAttribute::LargeCommunities(cs) => (
            OPTIONAL | TRANSITIVE,
            attr::LARGE_COMMUNITIES,
            cs.iter()
                .flat_map(|c| [c.global, c.local1, c.local2])
                .flat_map(u32::to_be_bytes)
                .collect(),
        ),
        PathAttribute::Unknown { flags, code, value } => {
            (flags & !flag::EXTENDED_LENGTH, *code, value.clone())
        }
    };
    if let Ok(len) = u8::try_from(value.len()) {
        out.extend_from_slice(&[flags, code, len]);
    } else {
        let len = u16::try_from(value.len()).map_err(|_| EncodeError::TooLong(value.len()))?;
        out.extend_from_slice(&[flags | flag::EXTENDED_LENGTH, code]);
        out.extend_from_slice(&len.to_be_bytes());
    }
    out.extend_from_slice(&value);
    Ok(())
}

fn family_octets(f: AfiSafi) -> Vec<u8> {
    let [a, b] = f.afi.to_be_bytes();
    vec![a, b, f.safi]
}

fn push_family_prefixes(
    family: AfiSafi,
    prefixes: &[IpNet],
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    for p in prefixes {
        if AfiSafi::of(p) != family {
            return Err(EncodeError::FamilyMismatch("prefix"));
        }
        push_prefix(p, out);
    }
    Ok(())
}

fn as_path(segments: &[AsSegment], four_octet: bool) -> Result<Vec<u8>, EncodeError> {
    let mut v = Vec::new();
    for s in segments {
        let (kind, asns) = match s {
            AsSegment::Set(a) => (1, a),
            AsSegment::Sequence(a) => (2, a),
        };
        let count =
            u8::try_from(asns.len()).map_err(|_| EncodeError::FieldTooLong("AS segment"))?;
        v.extend_from_slice(&[kind, count]);
        for &asn in asns {
            if four_octet {
                v.extend_from_slice(&asn.to_be_bytes());
            } else {
                let short = u16::try_from(asn).map_err(|_| EncodeError::AsnTooWide(asn))?;
                v.extend_from_slice(&short.to_be_bytes());
            }
        }
    }
    Ok(v)
}
