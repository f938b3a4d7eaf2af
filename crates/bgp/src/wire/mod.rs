//! BGP-4 messages on the wire: our own small types, an encoder and a decoder.
//!
//! Hand-written rather than taken from `netgauze-bgp-pkt` or `routecore` (both were weighed, see
//! `reference/bgp.md` §1): an announce-only speaker needs five message kinds, four capabilities,
//! two address families and ten path attributes. That subset is about a thousand lines with no
//! dependency beyond `ipnet` and `thiserror`, while `netgauze-bgp-pkt` 0.13 alone resolves to 17
//! packages (two major versions of `syn` among them; `routecore` is similar) and brings types
//! shaped for route collectors (every address family, every attribute) that we would still
//! have to wrap in our own; routecore's FSM lacks MD5 and netgauze's speaker lacks an
//! Adj-RIB-Out, so neither saves the session or RIB work either. Owning
//! the decoder also lets it answer exactly what RFC 7606 asks of a receiver — which error resets
//! the session and which only withdraws the UPDATE's routes — and it is fuzzed
//! (`crates/bgp/fuzz`).
//!
//! ```text
//!  frame:   marker (16 × 0xff) | length (u16, 19..=4096) | type (u8) | body
//!  types:   1 OPEN   2 UPDATE   3 NOTIFICATION   4 KEEPALIVE   5 ROUTE-REFRESH
//! ```
//!
//! Encoding and decoding depend on one negotiated fact, whether both sides sent the 4-octet AS
//! capability (RFC 6793): it decides the width of AS numbers in AS_PATH. [`Codec`] carries it.

mod decode;
mod encode;
#[cfg(test)]
mod tests;

use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

pub use decode::{DecodeError, ErrorAction, decode, frame_length};
pub use encode::{EncodeError, encode, encoded_prefix_len};

/// The length of the fixed message header: marker, length and type (RFC 4271 §4.1).
pub const HEADER_LEN: usize = 19;
/// The largest message a BGP-4 speaker may send without the extended message capability
/// (RFC 4271 §4.1).
pub const MAX_MESSAGE_LEN: usize = 4096;
/// The 2-octet AS number that stands for a 4-octet one towards an old speaker (RFC 6793 §9).
pub const AS_TRANS: u16 = 23456;
/// The well-known GRACEFUL_SHUTDOWN community 65535:0 (RFC 8326 §4.1).
pub const GRACEFUL_SHUTDOWN: u32 = 0xffff_0000;

/// Negotiated facts the wire format depends on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Codec {
    /// Both speakers sent the 4-octet AS capability, so AS_PATH carries 4-octet AS numbers
    /// (RFC 6793 §3). Before the OPEN exchange this is false, which is what OPEN needs.
    pub four_octet_as: bool,
}

/// One BGP message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// OPEN (RFC 4271 §4.2).
    Open(Open),
    /// UPDATE (RFC 4271 §4.3).
    Update(Update),
    /// NOTIFICATION (RFC 4271 §4.5).
    Notification(Notification),
    /// KEEPALIVE (RFC 4271 §4.4).
    Keepalive,
    /// ROUTE-REFRESH (RFC 2918 §3).
    RouteRefresh(RouteRefresh),
}

impl Message {
    /// The message kind as a metric label.
    pub fn label(&self) -> &'static str {
        match self {
            Message::Open(_) => "open",
            Message::Update(_) => "update",
            Message::Notification(_) => "notification",
            Message::Keepalive => "keepalive",
            Message::RouteRefresh(_) => "route_refresh",
        }
    }
}

/// An address family and subsequent address family pair (RFC 4760 §5, IANA registries).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AfiSafi {
    /// Address Family Identifier: 1 IPv4, 2 IPv6.
    pub afi: u16,
    /// Subsequent AFI: 1 unicast.
    pub safi: u8,
}

impl AfiSafi {
    /// IPv4 unicast.
    pub const IPV4_UNICAST: AfiSafi = AfiSafi { afi: 1, safi: 1 };
    /// IPv6 unicast.
    pub const IPV6_UNICAST: AfiSafi = AfiSafi { afi: 2, safi: 1 };

    /// The family of a prefix.
    pub fn of(prefix: &IpNet) -> AfiSafi {
        match prefix {
            IpNet::V4(_) => AfiSafi::IPV4_UNICAST,
            IpNet::V6(_) => AfiSafi::IPV6_UNICAST,
        }
    }
}

/// OPEN: who we are and what we can do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Open {
    /// Protocol version; 4 (RFC 4271 §4.2).
    pub version: u8,
    /// "My Autonomous System": the AS number, or AS_TRANS when it needs 4 octets.
    pub my_as: u16,
    /// Proposed hold time in seconds: 0 or at least 3.
    pub hold_time: u16,
    /// BGP Identifier (RFC 6286: any non-zero 4 octets).
    pub bgp_id: Ipv4Addr,
    /// Capabilities, in the order they are sent (RFC 5492).
    pub capabilities: Vec<Capability>,
}

impl Open {
    /// The sender's AS number: the 4-octet capability's when present (RFC 6793 §4.1).
    pub fn asn(&self) -> u32 {
        self.capabilities
            .iter()
            .find_map(|c| match c {
                Capability::FourOctetAs(asn) => Some(*asn),
                _ => None,
            })
            .unwrap_or(u32::from(self.my_as))
    }
}

/// One capability of the Capabilities optional parameter (RFC 5492 §4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Capability {
    /// Code 1: multiprotocol extensions for one family (RFC 4760 §8).
    MultiProtocol(AfiSafi),
    /// Code 2: route refresh (RFC 2918 §2).
    RouteRefresh,
    /// Code 64: graceful restart (RFC 4724 §3).
    GracefulRestart(GracefulRestart),
    /// Code 65: 4-octet AS number support, with the speaker's AS (RFC 6793 §3).
    FourOctetAs(u32),
    /// Any other capability, kept as received; a speaker ignores what it does not know
    /// (RFC 5492 §3).
    Unknown {
        /// Capability code.
        code: u8,
        /// Capability value.
        value: Vec<u8>,
    },
}

/// The graceful restart capability's fields (RFC 4724 §3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GracefulRestart {
    /// The Restart State bit: the sender has restarted.
    pub restart_state: bool,
    /// Restart Time in seconds; 12 bits on the wire.
    pub restart_time: u16,
    /// Per family: whether forwarding state was preserved (the F bit).
    pub families: Vec<(AfiSafi, bool)>,
}

/// UPDATE: routes withdrawn and routes announced with one set of path attributes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Update {
    /// IPv4 unicast prefixes withdrawn (the Withdrawn Routes field).
    pub withdrawn: Vec<ipnet::Ipv4Net>,
    /// Path attributes in the order they are sent.
    pub attributes: Vec<PathAttribute>,
    /// IPv4 unicast prefixes announced (the NLRI field).
    pub nlri: Vec<ipnet::Ipv4Net>,
}

impl Update {
    /// The End-of-RIB marker for a family (RFC 4724 §2): an empty UPDATE for IPv4 unicast, an
    /// UPDATE with only an empty MP_UNREACH_NLRI for any other.
    pub fn end_of_rib(family: AfiSafi) -> Update {
        if family == AfiSafi::IPV4_UNICAST {
            Update::default()
        } else {
            Update {
                attributes: vec![PathAttribute::MpUnreach(MpUnreach {
                    family,
                    withdrawn: Vec::new(),
                })],
                ..Update::default()
            }
        }
    }

    /// The family this UPDATE marks the end of the initial table for, if it is End-of-RIB.
    pub fn end_of_rib_family(&self) -> Option<AfiSafi> {
        if !self.withdrawn.is_empty() || !self.nlri.is_empty() {
            return None;
        }
        match self.attributes.as_slice() {
            [] => Some(AfiSafi::IPV4_UNICAST),
            [PathAttribute::MpUnreach(u)] if u.withdrawn.is_empty() => Some(u.family),
            _ => None,
        }
    }
}

/// ORIGIN values (RFC 4271 §4.3 type code 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Origin {
    /// 0: learned from an interior protocol or configured.
    Igp,
    /// 1: learned via EGP.
    Egp,
    /// 2: learned some other way.
    Incomplete,
}

/// An AS_PATH segment (RFC 4271 §4.3 type code 2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AsSegment {
    /// Type 1: an unordered set.
    Set(Vec<u32>),
    /// Type 2: an ordered sequence.
    Sequence(Vec<u32>),
}

/// A large community (RFC 8092 §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LargeCommunity {
    /// Global Administrator: an AS number.
    pub global: u32,
    /// Local Data Part 1.
    pub local1: u32,
    /// Local Data Part 2.
    pub local2: u32,
}

/// The next hop of MP_REACH_NLRI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MpNextHop {
    /// 4 octets, for IPv4 unicast.
    V4(Ipv4Addr),
    /// 16 octets (global) or 32 (global and link-local), for IPv6 unicast (RFC 2545 §3).
    V6 {
        /// Global address.
        global: Ipv6Addr,
        /// Link-local address, sent when the peer shares the link.
        link_local: Option<Ipv6Addr>,
    },
}

/// MP_REACH_NLRI for IPv4 or IPv6 unicast (RFC 4760 §3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MpReach {
    /// The family; every prefix in `nlri` belongs to it.
    pub family: AfiSafi,
    /// Next hop.
    pub next_hop: MpNextHop,
    /// Prefixes announced.
    pub nlri: Vec<IpNet>,
}

/// MP_UNREACH_NLRI for IPv4 or IPv6 unicast (RFC 4760 §4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MpUnreach {
    /// The family; every prefix in `withdrawn` belongs to it.
    pub family: AfiSafi,
    /// Prefixes withdrawn.
    pub withdrawn: Vec<IpNet>,
}

/// A path attribute. Those the speaker sends or validates are typed; others are kept raw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathAttribute {
    /// Type 1, well-known mandatory.
    Origin(Origin),
    /// Type 2, well-known mandatory. AS numbers are 2 or 4 octets by [`Codec`].
    AsPath(Vec<AsSegment>),
    /// Type 3, well-known mandatory for IPv4 NLRI.
    NextHop(Ipv4Addr),
    /// Type 4, optional non-transitive.
    MultiExitDisc(u32),
    /// Type 5, well-known, sent on iBGP sessions only (RFC 4271 §5.1.5).
    LocalPref(u32),
    /// Type 8, optional transitive (RFC 1997).
    Communities(Vec<u32>),
    /// Type 14, optional non-transitive (RFC 4760).
    MpReach(MpReach),
    /// Type 15, optional non-transitive (RFC 4760).
    MpUnreach(MpUnreach),
    /// Type 17, optional transitive: the real path towards a 2-octet speaker (RFC 6793 §3).
    As4Path(Vec<AsSegment>),
    /// Type 32, optional transitive (RFC 8092).
    LargeCommunities(Vec<LargeCommunity>),
    /// Any other attribute, kept as received.
    Unknown {
        /// Attribute flags, without the Extended Length bit (it follows from the length).
        flags: u8,
        /// Attribute type code.
        code: u8,
        /// Attribute value.
        value: Vec<u8>,
    },
}

/// NOTIFICATION: an error, after which the sender closes the connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notification {
    /// Error code (RFC 4271 §4.5).
    pub code: u8,
    /// Error subcode.
    pub subcode: u8,
    /// Data, whose meaning depends on code and subcode.
    pub data: Vec<u8>,
}

impl Notification {
    /// A notification without data.
    pub fn new(code: u8, subcode: u8) -> Notification {
        Notification { code, subcode, data: Vec::new() }
    }

    /// A short label of the error code for metrics and status.
    pub fn label(&self) -> &'static str {
        match self.code {
            code::MESSAGE_HEADER => "message_header_error",
            code::OPEN => "open_message_error",
            code::UPDATE => "update_message_error",
            code::HOLD_TIMER_EXPIRED => "hold_timer_expired",
            code::FSM => "fsm_error",
            code::CEASE => "cease",
            code::ROUTE_REFRESH => "route_refresh_message_error",
            _ => "unknown",
        }
    }
}

impl std::fmt::Display for Notification {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (code {}, subcode {})", self.label(), self.code, self.subcode)
    }
}

/// NOTIFICATION error codes and subcodes (RFC 4271 §4.5, RFC 4486, RFC 6608, RFC 7313).
pub mod code {
    /// Message Header Error.
    pub const MESSAGE_HEADER: u8 = 1;
    /// OPEN Message Error.
    pub const OPEN: u8 = 2;
    /// UPDATE Message Error.
    pub const UPDATE: u8 = 3;
    /// Hold Timer Expired.
    pub const HOLD_TIMER_EXPIRED: u8 = 4;
    /// Finite State Machine Error.
    pub const FSM: u8 = 5;
    /// Cease.
    pub const CEASE: u8 = 6;
    /// ROUTE-REFRESH Message Error (RFC 7313 §5).
    pub const ROUTE_REFRESH: u8 = 7;

    /// Message Header Error subcodes.
    pub mod header {
        /// The marker is not all ones.
        pub const NOT_SYNCHRONIZED: u8 = 1;
        /// The length is out of range for the type.
        pub const BAD_LENGTH: u8 = 2;
        /// The type is unknown.
        pub const BAD_TYPE: u8 = 3;
    }

    /// OPEN Message Error subcodes.
    pub mod open {
        /// Version is not 4.
        pub const UNSUPPORTED_VERSION: u8 = 1;
        /// The peer's AS is not the configured one.
        pub const BAD_PEER_AS: u8 = 2;
        /// The BGP Identifier is zero, or ours on an iBGP session.
        pub const BAD_BGP_ID: u8 = 3;
        /// An optional parameter other than Capabilities.
        pub const UNSUPPORTED_OPTIONAL_PARAMETER: u8 = 4;
        /// Hold time 1 or 2.
        pub const UNACCEPTABLE_HOLD_TIME: u8 = 6;
    }

    /// UPDATE Message Error subcodes.
    pub mod update {
        /// Lengths do not add up.
        pub const MALFORMED_ATTRIBUTE_LIST: u8 = 1;
        /// A well-known attribute is missing.
        pub const MISSING_WELL_KNOWN: u8 = 3;
        /// Flags disagree with the type.
        pub const ATTRIBUTE_FLAGS: u8 = 4;
        /// Length disagrees with the type.
        pub const ATTRIBUTE_LENGTH: u8 = 5;
        /// ORIGIN is not 0, 1 or 2.
        pub const INVALID_ORIGIN: u8 = 6;
        /// An optional attribute is malformed.
        pub const OPTIONAL_ATTRIBUTE: u8 = 9;
        /// A prefix is malformed.
        pub const INVALID_NETWORK_FIELD: u8 = 10;
        /// AS_PATH is malformed.
        pub const MALFORMED_AS_PATH: u8 = 11;
    }

    /// FSM Error subcodes (RFC 6608 §3).
    pub mod fsm {
        /// Unexpected message in OpenSent.
        pub const IN_OPEN_SENT: u8 = 1;
        /// Unexpected message in OpenConfirm.
        pub const IN_OPEN_CONFIRM: u8 = 2;
        /// Unexpected message in Established.
        pub const IN_ESTABLISHED: u8 = 3;
    }

    /// Cease subcodes (RFC 4486 §4).
    pub mod cease {
        /// Administrative Shutdown; data may carry a message (RFC 8203).
        pub const ADMINISTRATIVE_SHUTDOWN: u8 = 2;
        /// The peer was removed from the configuration.
        pub const PEER_DECONFIGURED: u8 = 3;
        /// Administrative Reset.
        pub const ADMINISTRATIVE_RESET: u8 = 4;
        /// Other Configuration Change.
        pub const OTHER_CONFIGURATION_CHANGE: u8 = 6;
    }

    /// ROUTE-REFRESH Message Error subcodes (RFC 7313 §5).
    pub mod route_refresh {
        /// The message length is not 23.
        pub const INVALID_LENGTH: u8 = 1;
    }
}

/// ROUTE-REFRESH: the peer asks for our routes of one family again (RFC 2918 §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouteRefresh {
    /// The family asked for.
    pub family: AfiSafi,
    /// The octet between AFI and SAFI: reserved (0) in RFC 2918, a subtype in RFC 7313.
    pub subtype: u8,
}
