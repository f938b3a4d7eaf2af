//! Hand-written schema fragments where the derived ones are too weak for the API server.
//!
//! The derived schema of a `Vec<String>` accepts any string; for address pools the API server
//! itself must reject nonsense (`10.0.0.0/33`, `foo`) with a message a person understands, so
//! these fragments add patterns, bounds and CEL rules with messages.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use schemars::{Schema, SchemaGenerator, json_schema};

/// One IPv4 octet, 0–255, without leading zeros (as Go's `net.ParseIP` wants them).
const OCTET: &str = "(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])";
/// One group of an IPv6 address.
const HEXTET: &str = "[0-9a-fA-F]{1,4}";
/// IPv4 prefix lengths 0–32.
const V4_PREFIX: &str = "(3[0-2]|[12]?[0-9])";
/// IPv6 prefix lengths 0–128.
const V6_PREFIX: &str = "(12[0-8]|1[01][0-9]|[1-9]?[0-9])";

/// The longest valid entry is an IPv6 range of two full addresses: 2 × 39 + 1 = 79
/// characters. The bound also keeps the API server's CEL cost estimate small.
pub const POOL_ENTRY_MAX_LENGTH: u64 = 79;
/// Entries per pool. Generous (real pools have a handful) but finite, because the API server
/// refuses CEL rules over lists whose cost it cannot bound.
pub const POOL_MAX_ENTRIES: u64 = 256;
/// Linux interface names are at most 15 bytes (`IFNAMSIZ` 16 with the terminating NUL).
const INTERFACE_NAME_PATTERN: &str = "^[A-Za-z0-9][A-Za-z0-9._-]{0,14}$";
/// Interfaces per class; a node rarely has more than a few dozen.
const INTERFACES_MAX: u64 = 64;

/// Message of the pool entry rule, shown by the API server when an entry is rejected.
pub const POOL_ENTRY_MESSAGE: &str = "each address pool entry must be an IPv4 or IPv6 CIDR \
     (192.0.2.0/24, 2001:db8::/120) or a range of one address family (192.0.2.10-192.0.2.20)";

fn ipv4() -> String {
    format!("({OCTET}\\.){{3}}{OCTET}")
}

/// IPv6 in every compressed form Kubernetes users write; the embedded-IPv4 forms
/// (`::ffff:192.0.2.1`) are not pool material and are rejected.
fn ipv6() -> String {
    let h = HEXTET;
    [
        format!("({h}:){{7}}{h}"),
        format!("({h}:){{1,7}}:"),
        format!("({h}:){{1,6}}:{h}"),
        format!("({h}:){{1,5}}(:{h}){{1,2}}"),
        format!("({h}:){{1,4}}(:{h}){{1,3}}"),
        format!("({h}:){{1,3}}(:{h}){{1,4}}"),
        format!("({h}:){{1,2}}(:{h}){{1,5}}"),
        format!("{h}:(:{h}){{1,6}}"),
        format!(":((:{h}){{1,7}}|:)"),
    ]
    .map(|alternative| format!("({alternative})"))
    .join("|")
}

/// An IPv4 or IPv6 address, anchored.
pub fn ip_address_pattern() -> String {
    format!("^({}|{})$", ipv4(), ipv6())
}

/// A pool entry: a CIDR or a range of one family, anchored.
pub fn pool_entry_pattern() -> String {
    let (v4, v6) = (ipv4(), ipv6());
    format!("^(({v4})/{V4_PREFIX}|({v6})/{V6_PREFIX}|({v4})-({v4})|({v6})-({v6}))$")
}

/// Schema of `spec.addressPool`.
pub fn address_pool(_: &mut SchemaGenerator) -> Schema {
    let pattern = pool_entry_pattern();
    json_schema!({
        "type": "array",
        "minItems": 1,
        "maxItems": POOL_MAX_ENTRIES,
        "items": {
            "type": "string",
            "maxLength": POOL_ENTRY_MAX_LENGTH,
            "pattern": pattern,
            "x-kubernetes-validations": [{
                "rule": format!("self.matches('{}')", pattern.replace('\\', "\\\\")),
                "message": POOL_ENTRY_MESSAGE,
            }],
        },
        "x-kubernetes-list-type": "atomic",
    })
}

/// Schema of `spec.l2.interfaces`.
pub fn interface_names(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "array",
        "maxItems": INTERFACES_MAX,
        "items": {"type": "string", "pattern": INTERFACE_NAME_PATTERN},
        "x-kubernetes-list-type": "set",
    })
}

/// Schema of a `conditions` list: Kubernetes conditions keyed by `type`.
pub fn conditions(generator: &mut SchemaGenerator) -> Schema {
    let item = generator.subschema_for::<Condition>();
    json_schema!({
        "type": "array",
        "items": item,
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["type"],
    })
}

/// Schema of a list of IP addresses.
pub fn ip_addresses(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "array",
        "items": {"type": "string", "pattern": ip_address_pattern()},
    })
}

/// Schema of one optional IP address.
pub fn ip_address(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "string", "pattern": ip_address_pattern()})
}

/// A decimal 0–65535 without leading zeros.
const U16: &str =
    "(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3}|0)";
/// A decimal 0–4294967295 without leading zeros.
const U32: &str = "(429496729[0-5]|42949672[0-8][0-9]|4294967[01][0-9]{2}|429496[0-6][0-9]{3}|42949[0-5][0-9]{4}|4294[0-8][0-9]{5}|429[0-3][0-9]{6}|42[0-8][0-9]{7}|4[01][0-9]{8}|[1-3][0-9]{9}|[1-9][0-9]{0,8}|0)";

/// Well-known community names an advertisement may use (RFC 1997), plus `none`.
pub const WELL_KNOWN_COMMUNITIES: [(&str, &str); 3] =
    [("no-export", "65535:65281"), ("no-advertise", "65535:65282"), ("local-as", "65535:65283")];

/// A community of an advertisement: `ASN:value`, a well-known name, `none`, or a large
/// community `large:global:local1:local2`, anchored.
pub fn community_pattern() -> String {
    format!("^({U16}:{U16}|no-export|no-advertise|local-as|none|large:{U32}:{U32}:{U32})$")
}

/// Message shown by the API server when a community is rejected.
pub const COMMUNITY_MESSAGE: &str = "each community must be ASN:value with both parts in \
     0-65535, no-export, no-advertise, local-as, none, or large:global:local1:local2 with each \
     part in 0-4294967295";

/// Schema of `advertisements[].bgp.communities`.
pub fn communities(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "array",
        "maxItems": 64,
        "items": {"type": "string", "maxLength": 40, "pattern": community_pattern()},
        "x-kubernetes-list-type": "atomic",
    })
}

/// A Go-style duration of whole units as the original accepted it (`90s`, `1m30s`, `500ms`).
pub const HOLD_TIME_PATTERN: &str = "^([0-9]+(ms|s|m|h))+$";

/// Message of the hold time rule.
pub const HOLD_TIME_MESSAGE: &str =
    "holdTime must be 0s (no keepalives) or at least 3s (RFC 4271 section 4.2)";

/// Schema of a peer's `holdTime`: the pattern, and a CEL rule for the RFC's lower bound.
pub fn hold_time(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "string",
        "maxLength": 32,
        "pattern": HOLD_TIME_PATTERN,
        "x-kubernetes-validations": [{
            "rule": "duration(self) == duration('0s') || duration(self) >= duration('3s')",
            "message": HOLD_TIME_MESSAGE,
        }],
    })
}

/// Schema of one optional IPv4 address (a BGP identifier is 4 bytes, RFC 4271 §4.2).
pub fn ipv4_address(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "string", "pattern": format!("^{}$", ipv4())})
}

/// Schema of a peer's `status.sessions`: one entry per node, so each node's speaker owns its
/// own entry under server-side apply.
pub fn bgp_sessions(generator: &mut SchemaGenerator) -> Schema {
    let item = generator.subschema_for::<crate::bgp::BgpSessionStatus>();
    json_schema!({
        "type": "array",
        "items": item,
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["node"],
    })
}
