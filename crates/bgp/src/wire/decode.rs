//! Bytes to messages. Every error says which NOTIFICATION it calls for and whether RFC 7606 lets
//! the session live on (treat-as-withdraw) or requires a reset. Nothing here panics on any input:
//! every read goes through [`Reader`], which checks lengths first.

use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use super::encode::{PARAM_CAPABILITIES, attr, cap, flag, kind};
use super::{
    AfiSafi, AsSegment, Capability, Codec, GracefulRestart, HEADER_LEN, LargeCommunity,
    MAX_MESSAGE_LEN, Message, MpNextHop, MpReach, MpUnreach, Notification, Open, Origin,
    PathAttribute, RouteRefresh, Update, code,
};

/// What the receiver must do about a malformed message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorAction {
    /// Send the NOTIFICATION and close the session.
    SessionReset,
    /// Keep the session; the UPDATE's routes count as withdrawn (RFC 7606 §2).
    TreatAsWithdraw,
}

/// A malformed message: the NOTIFICATION it calls for, what to do, and a label for metrics.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("malformed message ({reason}): {notification}")]
pub struct DecodeError {
    /// The NOTIFICATION to send when `action` is a session reset.
    pub notification: Notification,
    /// Session reset or treat-as-withdraw.
    pub action: ErrorAction,
    /// What was wrong, as a metric label.
    pub reason: &'static str,
}

impl DecodeError {
    fn reset(code: u8, subcode: u8, data: Vec<u8>, reason: &'static str) -> DecodeError {
        DecodeError {
            notification: Notification { code, subcode, data },
            action: ErrorAction::SessionReset,
            reason,
        }
    }

    fn withdraw(subcode: u8, reason: &'static str) -> DecodeError {
        DecodeError {
            notification: Notification::new(code::UPDATE, subcode),
            action: ErrorAction::TreatAsWithdraw,
            reason,
        }
    }
}

/// The length of the first message in `buf`, once its header is complete; `None` while more
/// octets are needed. A bad marker or length is a session reset (RFC 4271 §6.1).
pub fn frame_length(buf: &[u8]) -> Result<Option<usize>, DecodeError> {
    if buf.len() < HEADER_LEN {
        return Ok(None);
    }
    if buf[..16].iter().any(|&b| b != 0xff) {
        return Err(DecodeError::reset(
            code::MESSAGE_HEADER,
            code::header::NOT_SYNCHRONIZED,
            Vec::new(),
            "marker",
        ));
    }
    let len = usize::from(u16::from_be_bytes([buf[16], buf[17]]));
    if !(HEADER_LEN..=MAX_MESSAGE_LEN).contains(&len) {
        return Err(bad_length(buf));
    }
    Ok((buf.len() >= len).then_some(len))
}

/// RFC 4271 §6.1: Bad Message Length carries the erroneous Length field.
fn bad_length(frame: &[u8]) -> DecodeError {
    DecodeError::reset(
        code::MESSAGE_HEADER,
        code::header::BAD_LENGTH,
        frame[16..18].to_vec(),
        "length",
    )
}

/// Decodes exactly one message, header included.
pub fn decode(frame: &[u8], codec: Codec) -> Result<Message, DecodeError> {
    let len = frame_length(frame)?.ok_or_else(|| {
        DecodeError::reset(code::MESSAGE_HEADER, code::header::BAD_LENGTH, Vec::new(), "short")
    })?;
    if len != frame.len() {
        return Err(bad_length(frame));
    }
    let body = &frame[HEADER_LEN..];
    // Minimum lengths by type (RFC 4271 §4.2–4.5, RFC 7313 §5).
    let min = match frame[18] {
        kind::OPEN => 10,
        kind::UPDATE => 4,
        kind::NOTIFICATION => 2,
        kind::KEEPALIVE | kind::ROUTE_REFRESH => 0,
        other => {
            return Err(DecodeError::reset(
                code::MESSAGE_HEADER,
                code::header::BAD_TYPE,
                vec![other],
                "type",
            ));
        }
    };
    if body.len() < min || (frame[18] == kind::KEEPALIVE && !body.is_empty()) {
        return Err(bad_length(frame));
    }
    match frame[18] {
        kind::OPEN => decode_open(body).map(Message::Open),
        kind::UPDATE => decode_update(body, codec).map(Message::Update),
        kind::NOTIFICATION => Ok(Message::Notification(Notification {
            code: body[0],
            subcode: body[1],
            data: body[2..].to_vec(),
        })),
        kind::KEEPALIVE => Ok(Message::Keepalive),
        _ => {
            // RFC 7313 §5: a ROUTE-REFRESH whose length is not 23 is an error with its own
            // code, and the data is the whole message.
            if body.len() != 4 {
                return Err(DecodeError::reset(
                    code::ROUTE_REFRESH,
                    code::route_refresh::INVALID_LENGTH,
                    frame.to_vec(),
                    "route_refresh_length",
                ));
            }
            Ok(Message::RouteRefresh(RouteRefresh {
                family: AfiSafi { afi: u16::from_be_bytes([body[0], body[1]]), safi: body[3] },
                subtype: body[2],
            }))
        }
    }
}

/// A cursor over a byte slice whose reads fail instead of panicking.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf }
    }

    fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    fn remaining(&self) -> usize {
        self.buf.len()
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.buf.len() < n {
            return None;
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Some(head)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Option<u32> {
        self.take(4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn ipv4(&mut self) -> Option<Ipv4Addr> {
        self.u32().map(Ipv4Addr::from)
    }

    fn ipv6(&mut self) -> Option<Ipv6Addr> {
        let b: [u8; 16] = self.take(16)?.try_into().ok()?;
        Some(Ipv6Addr::from(b))
    }
}

fn open_error(subcode: u8, reason: &'static str) -> DecodeError {
    DecodeError::reset(code::OPEN, subcode, Vec::new(), reason)
}

fn decode_open(body: &[u8]) -> Result<Open, DecodeError> {
    // Subcode 0 is "unspecific" (RFC 4271 errata 4493): lengths inside OPEN that disagree.
    let malformed = || open_error(0, "open_length");
    let mut r = Reader::new(body);
    let version = r.u8().ok_or_else(malformed)?;
    let my_as = r.u16().ok_or_else(malformed)?;
    let hold_time = r.u16().ok_or_else(malformed)?;
    let bgp_id = r.ipv4().ok_or_else(malformed)?;
    let params_len = usize::from(r.u8().ok_or_else(malformed)?);
    if r.remaining() != params_len {
        return Err(malformed());
    }
    let mut capabilities = Vec::new();
    while !r.is_empty() {
        let kind = r.u8().ok_or_else(malformed)?;
        let len = usize::from(r.u8().ok_or_else(malformed)?);
        let value = r.take(len).ok_or_else(malformed)?;
        if kind != PARAM_CAPABILITIES {
            return Err(DecodeError::reset(
                code::OPEN,
                code::open::UNSUPPORTED_OPTIONAL_PARAMETER,
                Vec::new(),
                "optional_parameter",
            ));
        }
        let mut c = Reader::new(value);
        while !c.is_empty() {
            let code = c.u8().ok_or_else(malformed)?;
            let len = usize::from(c.u8().ok_or_else(malformed)?);
            let value = c.take(len).ok_or_else(malformed)?;
            capabilities.push(capability(code, value));
        }
    }
    Ok(Open { version, my_as, hold_time, bgp_id, capabilities })
}

/// A capability from its code and value; a known code with a value of the wrong shape is kept
/// as unknown and so ignored, rather than failing the session.
fn capability(code: u8, value: &[u8]) -> Capability {
    let unknown = || Capability::Unknown { code, value: value.to_vec() };
    match (code, value) {
        (cap::MULTIPROTOCOL, &[a, b, _, safi]) => {
            Capability::MultiProtocol(AfiSafi { afi: u16::from_be_bytes([a, b]), safi })
        }
        (cap::ROUTE_REFRESH, []) => Capability::RouteRefresh,
        (cap::FOUR_OCTET_AS, &[a, b, c, d]) => {
            Capability::FourOctetAs(u32::from_be_bytes([a, b, c, d]))
        }
        (cap::GRACEFUL_RESTART, [a, b, rest @ ..]) if rest.len().is_multiple_of(4) => {
            let head = u16::from_be_bytes([*a, *b]);
            let families = rest
                .chunks_exact(4)
                .map(|f| {
                    let family = AfiSafi { afi: u16::from_be_bytes([f[0], f[1]]), safi: f[2] };
                    (family, f[3] & 0x80 != 0)
                })
                .collect();
            Capability::GracefulRestart(GracefulRestart {
                restart_state: head & 0x8000 != 0,
                restart_time: head & 0x0fff,
                families,
            })
        }
        _ => unknown(),
    }
}

fn decode_update(body: &[u8], codec: Codec) -> Result<Update, DecodeError> {
    let list = |reason| {
        DecodeError::reset(code::UPDATE, code::update::MALFORMED_ATTRIBUTE_LIST, Vec::new(), reason)
    };
    let mut r = Reader::new(body);
    let withdrawn_len = usize::from(r.u16().ok_or_else(|| list("withdrawn_length"))?);
    let withdrawn_field = r.take(withdrawn_len).ok_or_else(|| list("withdrawn_length"))?;
    let attrs_len = usize::from(r.u16().ok_or_else(|| list("attributes_length"))?);
    let attrs_field = r.take(attrs_len).ok_or_else(|| list("attributes_length"))?;
    let nlri_field = r.buf;

    // RFC 7606 §5.3: a prefix that cannot be parsed makes the rest unparseable: session reset.
    let withdrawn = v4_prefixes(withdrawn_field)?;
    let nlri = v4_prefixes(nlri_field)?;

    let mut attributes: Vec<PathAttribute> = Vec::new();
    let mut seen = [false; 256];
    let mut withdraw: Option<DecodeError> = None;
    let mut a = Reader::new(attrs_field);
    while !a.is_empty() {
        // RFC 7606 §4: an attribute header or value running past the attribute field is
        // treat-as-withdraw; the Total Path Attribute Length still locates the NLRI.
        let Some((flags, type_code, value)) = attribute_header(&mut a) else {
            withdraw.get_or_insert(DecodeError::withdraw(
                code::update::ATTRIBUTE_LENGTH,
                "attribute_overrun",
            ));
            break;
        };
        let first = !seen[usize::from(type_code)];
        seen[usize::from(type_code)] = true;
        if !first {
            // RFC 7606 §3(g): a repeated MP attribute is a reset, any other repeat is dropped.
            if matches!(type_code, attr::MP_REACH | attr::MP_UNREACH) {
                return Err(list("repeated_mp_attribute"));
            }
            continue;
        }
        match attribute(flags, type_code, value, codec)? {
            Parsed::Keep(attribute) => attributes.push(attribute),
            Parsed::Discard => {}
            Parsed::Withdraw(e) => {
                withdraw.get_or_insert(e);
            }
        }
    }
    if let Some(e) = withdraw {
        return Err(e);
    }
    // RFC 7606 §3(d): a missing well-known mandatory attribute is treat-as-withdraw.
    let has = |c: u8| seen[usize::from(c)];
    let reaches = !nlri.is_empty() || has(attr::MP_REACH);
    let missing = if reaches && !has(attr::ORIGIN) {
        Some(attr::ORIGIN)
    } else if reaches && !has(attr::AS_PATH) {
        Some(attr::AS_PATH)
    } else if !nlri.is_empty() && !has(attr::NEXT_HOP) {
        Some(attr::NEXT_HOP)
    } else {
        None
    };
    if let Some(missing) = missing {
        let mut e = DecodeError::withdraw(code::update::MISSING_WELL_KNOWN, "missing_attribute");
        e.notification.data = vec![missing];
        return Err(e);
    }
    Ok(Update { withdrawn, attributes, nlri })
}

/// One attribute's flags, type and value, or `None` when it runs past the field.
fn attribute_header<'a>(a: &mut Reader<'a>) -> Option<(u8, u8, &'a [u8])> {
    let flags = a.u8()?;
    let type_code = a.u8()?;
    let len = if flags & flag::EXTENDED_LENGTH != 0 {
        usize::from(a.u16()?)
    } else {
        usize::from(a.u8()?)
    };
    Some((flags, type_code, a.take(len)?))
}

enum Parsed {
    Keep(PathAttribute),
    /// RFC 7606 §2 "attribute discard": drop the attribute, keep the routes.
    Discard,
    Withdraw(DecodeError),
}

fn attribute(flags: u8, type_code: u8, value: &[u8], codec: Codec) -> Result<Parsed, DecodeError> {
    use flag::{OPTIONAL, TRANSITIVE};
    let class = flags & (OPTIONAL | TRANSITIVE);
    let length =
        |reason| Parsed::Withdraw(DecodeError::withdraw(code::update::ATTRIBUTE_LENGTH, reason));
    let flags_error =
        Parsed::Withdraw(DecodeError::withdraw(code::update::ATTRIBUTE_FLAGS, "flags"));
    let well_known = class == TRANSITIVE;
    let parsed = match type_code {
        attr::ORIGIN | attr::AS_PATH | attr::NEXT_HOP | attr::LOCAL_PREF if !well_known => {
            flags_error
        }
        attr::ORIGIN => match value {
            [0] => Parsed::Keep(PathAttribute::Origin(Origin::Igp)),
            [1] => Parsed::Keep(PathAttribute::Origin(Origin::Egp)),
            [2] => Parsed::Keep(PathAttribute::Origin(Origin::Incomplete)),
            [_] => Parsed::Withdraw(DecodeError::withdraw(code::update::INVALID_ORIGIN, "origin")),
            _ => length("origin_length"),
        },
        attr::AS_PATH => match as_path(value, codec.four_octet_as) {
            Some(p) => Parsed::Keep(PathAttribute::AsPath(p)),
            None => {
                Parsed::Withdraw(DecodeError::withdraw(code::update::MALFORMED_AS_PATH, "as_path"))
            }
        },
        attr::NEXT_HOP => match value {
            &[a, b, c, d] => Parsed::Keep(PathAttribute::NextHop(Ipv4Addr::new(a, b, c, d))),
            _ => length("next_hop_length"),
        },
        attr::LOCAL_PREF => match value {
            &[a, b, c, d] => {
                Parsed::Keep(PathAttribute::LocalPref(u32::from_be_bytes([a, b, c, d])))
            }
            _ => length("local_pref_length"),
        },
        attr::MED => match value {
            &[a, b, c, d] if class == OPTIONAL => {
                Parsed::Keep(PathAttribute::MultiExitDisc(u32::from_be_bytes([a, b, c, d])))
            }
            [_, _, _, _] => flags_error,
            _ => length("med_length"),
        },
        // RFC 7606 §7.6–7.7: these two are informational; malformed means attribute discard.
        attr::ATOMIC_AGGREGATE if !value.is_empty() => Parsed::Discard,
        attr::AGGREGATOR if value.len() != if codec.four_octet_as { 8 } else { 6 } => {
            Parsed::Discard
        }
        attr::COMMUNITIES => {
            if class != OPTIONAL | TRANSITIVE {
                flags_error
            } else if value.is_empty() || !value.len().is_multiple_of(4) {
                length("communities_length")
            } else {
                Parsed::Keep(PathAttribute::Communities(
                    value
                        .chunks_exact(4)
                        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
                        .collect(),
                ))
            }
        }
        attr::LARGE_COMMUNITIES => {
            if class != OPTIONAL | TRANSITIVE {
                flags_error
            } else if value.is_empty() || !value.len().is_multiple_of(12) {
                length("large_communities_length")
            } else {
                Parsed::Keep(PathAttribute::LargeCommunities(
                    value
                        .chunks_exact(12)
                        .map(|c| LargeCommunity {
                            global: u32::from_be_bytes([c[0], c[1], c[2], c[3]]),
                            local1: u32::from_be_bytes([c[4], c[5], c[6], c[7]]),
                            local2: u32::from_be_bytes([c[8], c[9], c[10], c[11]]),
                        })
                        .collect(),
                ))
            }
        }
        // RFC 6793 §6: a malformed AS4_PATH is discarded.
        attr::AS4_PATH => match as_path(value, true) {
            Some(p) if class == OPTIONAL | TRANSITIVE => Parsed::Keep(PathAttribute::As4Path(p)),
            _ => Parsed::Discard,
        },
        attr::MP_REACH => mp_reach(value, flags)?,
        attr::MP_UNREACH => mp_unreach(value, flags)?,
        _ => Parsed::Keep(PathAttribute::Unknown {
            flags: flags & !flag::EXTENDED_LENGTH,
            code: type_code,
            value: value.to_vec(),
        }),
    };
    Ok(parsed)
}

/// RFC 7606 §7.11: MP attributes that cannot be parsed leave their NLRI unknown: session reset.
fn mp_error(reason: &'static str) -> DecodeError {
    DecodeError::reset(code::UPDATE, code::update::OPTIONAL_ATTRIBUTE, Vec::new(), reason)
}

fn raw(flags: u8, code: u8, value: &[u8]) -> Parsed {
    Parsed::Keep(PathAttribute::Unknown {
        flags: flags & !flag::EXTENDED_LENGTH,
        code,
        value: value.to_vec(),
    })
}

fn known_family(f: AfiSafi) -> bool {
    f == AfiSafi::IPV4_UNICAST || f == AfiSafi::IPV6_UNICAST
}

fn mp_reach(value: &[u8], flags: u8) -> Result<Parsed, DecodeError> {
    let mut r = Reader::new(value);
    let afi = r.u16().ok_or_else(|| mp_error("mp_reach_length"))?;
    let safi = r.u8().ok_or_else(|| mp_error("mp_reach_length"))?;
    let family = AfiSafi { afi, safi };
    let nh_len = usize::from(r.u8().ok_or_else(|| mp_error("mp_reach_length"))?);
    let nh = r.take(nh_len).ok_or_else(|| mp_error("mp_reach_length"))?;
    r.u8().ok_or_else(|| mp_error("mp_reach_length"))?;
    if !known_family(family) {
        return Ok(raw(flags, attr::MP_REACH, value));
    }
    let mut n = Reader::new(nh);
    let next_hop = match (family, nh_len) {
        (AfiSafi::IPV4_UNICAST, 4) => n.ipv4().map(MpNextHop::V4),
        (AfiSafi::IPV6_UNICAST, 16 | 32) => n.ipv6().map(|global| MpNextHop::V6 {
            global,
            link_local: if nh_len == 32 { n.ipv6() } else { None },
        }),
        // IPv4 over an IPv6 next hop (RFC 8950) and the like: not ours to parse.
        (AfiSafi::IPV4_UNICAST, _) => return Ok(raw(flags, attr::MP_REACH, value)),
        _ => None,
    };
    let Some(next_hop) = next_hop else {
        return Ok(Parsed::Withdraw(DecodeError::withdraw(
            code::update::OPTIONAL_ATTRIBUTE,
            "mp_next_hop_length",
        )));
    };
    let nlri = family_prefixes(family, r.buf)?;
    Ok(Parsed::Keep(PathAttribute::MpReach(MpReach { family, next_hop, nlri })))
}

fn mp_unreach(value: &[u8], flags: u8) -> Result<Parsed, DecodeError> {
    let mut r = Reader::new(value);
    let afi = r.u16().ok_or_else(|| mp_error("mp_unreach_length"))?;
    let safi = r.u8().ok_or_else(|| mp_error("mp_unreach_length"))?;
    let family = AfiSafi { afi, safi };
    if !known_family(family) {
        return Ok(raw(flags, attr::MP_UNREACH, value));
    }
    let withdrawn = family_prefixes(family, r.buf)?;
    Ok(Parsed::Keep(PathAttribute::MpUnreach(MpUnreach { family, withdrawn })))
}

fn family_prefixes(family: AfiSafi, field: &[u8]) -> Result<Vec<IpNet>, DecodeError> {
    if family == AfiSafi::IPV4_UNICAST {
        Ok(v4_prefixes(field)
            .map_err(|_| mp_error("mp_prefix"))?
            .into_iter()
            .map(IpNet::V4)
            .collect())
    } else {
        prefixes(field, 128, |octets, len| {
            let mut a = [0u8; 16];
            a[..octets.len()].copy_from_slice(octets);
            Ipv6Net::new(Ipv6Addr::from(a), len).ok().map(|p| IpNet::V6(p.trunc()))
        })
        .map_err(|_| mp_error("mp_prefix"))
    }
}

fn v4_prefixes(field: &[u8]) -> Result<Vec<Ipv4Net>, DecodeError> {
    prefixes(field, 32, |octets, len| {
        let mut a = [0u8; 4];
        a[..octets.len()].copy_from_slice(octets);
        Ipv4Net::new(Ipv4Addr::from(a), len).ok().map(|p| p.trunc())
    })
}

/// Parses (length, octets) prefixes; a length above `max` or a field that ends mid-prefix is
/// Invalid Network Field.
fn prefixes<T>(
    field: &[u8],
    max: u8,
    make: impl Fn(&[u8], u8) -> Option<T>,
) -> Result<Vec<T>, DecodeError> {
    let invalid = || {
        DecodeError::reset(code::UPDATE, code::update::INVALID_NETWORK_FIELD, Vec::new(), "prefix")
    };
    let mut r = Reader::new(field);
    let mut out = Vec::new();
    while !r.is_empty() {
        let len = r.u8().ok_or_else(invalid)?;
        if len > max {
            return Err(invalid());
        }
        let octets = r.take(usize::from(len).div_ceil(8)).ok_or_else(invalid)?;
        out.push(make(octets, len).ok_or_else(invalid)?);
    }
    Ok(out)
}

fn as_path(value: &[u8], four_octet: bool) -> Option<Vec<AsSegment>> {
    let mut r = Reader::new(value);
    let mut segments = Vec::new();
    while !r.is_empty() {
        let kind = r.u8()?;
        let count = usize::from(r.u8()?);
        // RFC 7606 §7.2: a zero-length segment is malformed.
        if count == 0 {
            return None;
        }
        let mut asns = Vec::with_capacity(count);
        for _ in 0..count {
            asns.push(if four_octet { r.u32()? } else { u32::from(r.u16()?) });
        }
        segments.push(match kind {
            1 => AsSegment::Set(asns),
            2 => AsSegment::Sequence(asns),
            _ => return None,
        });
    }
    Some(segments)
}
