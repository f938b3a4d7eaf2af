//! `migrate-bgp-settings`: turns the BGP part of a version 1 or 2 ModuleConfig into BGP objects,
//! the original module's algorithm (`reference/deckhouse-metallb.md` §5.7):
//!
//! * each `bgp` pool → `MetalLoadBalancerPool` of its name (`pool-<index>` when unnamed), with
//!   its addresses only (`auto-assign`/`avoid-buggy-ips` keep the CRD defaults, as there);
//! * each peer → `MetalLoadBalancerBGPPeer` `peer-<index>` (address, ASNs, port, router ID,
//!   hold time; source address, node selector and password are not migrated, as there);
//! * one `MetalLoadBalancerConfiguration` `migrated-bgp`: the speaker node selector, every
//!   peer, and one advertisement per pool (or per `bgp-advertisements` entry) with the
//!   communities resolved through `bgpCommunities`.
//!
//! Objects are only ever created, never updated: a name that exists (made by a person, or
//! already migrated) is left as it is, so a person's edits always win. The ModuleConfig is never
//! changed. While the settings keep BGP entries, a migrated object that is deleted is created
//! again (the original behaves the same); the docs say to remove the entries after the upgrade.
//!
//! Unlike the original, what the objects' schemas would refuse (an ASN of 0, a router ID that is
//! no IPv4 address, a hold time of 1 s, a community out of range) is left out and reported, so
//! one bad entry never fails the hook run.

use std::collections::{BTreeMap, BTreeSet};

use addon::{Hook, HookConfig, HookError, HookInput, HookOutput, KubeOperation, KubernetesBinding};
use metallb_api::names::{api, bgp, labels, metrics};
use metallb_api::schema::{POOL_MAX_ENTRIES, WELL_KNOWN_COMMUNITIES};
use serde_json::{Map, Value, json};

use crate::migrate_v1::{module_config_binding, normalize_entry};
use crate::order;
use crate::types::{SkipReason, Skipped, is_dns_subdomain, items, module_labels, skipped_metrics};

/// Metric group of this hook's skipped settings.
const GROUP: &str = metrics::GROUP_BGP_MIGRATION;
/// The settings migration stops at version 3, where the original dropped these settings.
const LAST_MIGRATED_VERSION: i64 = 2;
/// A BGP hold time other than 0 must be at least 3 s (RFC 4271 §4.2).
const MIN_HOLD_TIME_MS: u64 = 3000;

/// Names of existing objects only: their content never matters here, and a person's edit of one
/// must not re-run the migration.
const NAME_FILTER: &str = r#"{name: .metadata.name}"#;

pub(crate) struct MigrateBgp;

impl Hook for MigrateBgp {
    fn name(&self) -> &str {
        "migrate-bgp-settings"
    }

    fn config(&self) -> HookConfig {
        let existing = |name: &str, kind: &str| {
            KubernetesBinding::new(name, api::CLASS_API_VERSION, kind)
                .jq_filter(NAME_FILTER)
                .on_synchronization(false)
                .on_events([])
                .queue(order::QUEUE)
        };
        HookConfig::new()
            .before_helm(order::MIGRATE_BGP)
            .kubernetes(module_config_binding())
            .kubernetes(existing("pools", api::POOL_KIND))
            .kubernetes(existing("peers", api::BGP_PEER_KIND))
            .kubernetes(existing("configurations", api::CONFIGURATION_KIND))
    }

    fn run(&self, input: HookInput) -> Result<HookOutput, HookError> {
        let outcome = handle(
            &items(&input, "module_config")?,
            &names(&items(&input, "pools")?),
            &names(&items(&input, "peers")?),
            &names(&items(&input, "configurations")?),
        );
        let mut out = input.output();
        out.kubernetes.extend(outcome.ops);
        out.metric(addon::MetricOperation::expire(GROUP));
        out.metrics.extend(skipped_metrics(&outcome.skipped, GROUP));
        Ok(out)
    }
}

fn names(items: &[Value]) -> BTreeSet<String> {
    items.iter().filter_map(|v| v.get("name")?.as_str().map(str::to_owned)).collect()
}

/// What one run does.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    pub(crate) ops: Vec<KubeOperation>,
    pub(crate) skipped: Vec<Skipped>,
}

/// Collects what is left out, against the ModuleConfig.
struct Report(Vec<Skipped>);

impl Report {
    fn skip(&mut self, reason: SkipReason, detail: String) {
        self.0.push(Skipped::new(
            "ModuleConfig",
            "",
            metallb_api::names::module::NAME,
            reason,
            detail,
        ));
    }
}

/// The objects a ModuleConfig's BGP settings describe, as create operations for those that do
/// not exist yet.
pub(crate) fn handle(
    mc: &[Value],
    pools: &BTreeSet<String>,
    peers: &BTreeSet<String>,
    configurations: &BTreeSet<String>,
) -> Outcome {
    let mut report = Report(Vec::new());
    let [mc] = mc else { return Outcome::default() };
    let version = match mc.get("version") {
        None | Some(Value::Null) => 1,
        Some(v) => v.as_i64().unwrap_or(1),
    };
    if version > LAST_MIGRATED_VERSION {
        return Outcome::default();
    }
    let settings = mc.get("settings").cloned().unwrap_or(Value::Null);
    let bgp_pools = read_bgp_pools(&settings, &mut report);
    let peer_specs = read_peers(&settings, &mut report);
    if bgp_pools.is_empty() && peer_specs.is_empty() {
        return Outcome { ops: Vec::new(), skipped: report.0 };
    }
    let communities = read_communities(&settings, &mut report);

    let mut ops = Vec::new();
    let mut advertisements = Vec::new();
    for pool in &bgp_pools {
        if !pools.contains(&pool.name) {
            let spec = json!({"addresses": pool.addresses});
            ops.push(create(api::POOL_KIND, &pool.name, spec));
        }
        if pool.advertisements.is_empty() {
            advertisements.push(json!({"poolNames": [pool.name]}));
        }
        for adv in &pool.advertisements {
            advertisements.push(advertisement(&pool.name, adv, &communities, &mut report));
        }
    }
    let mut peer_names = Vec::new();
    for (name, spec) in peer_specs {
        if !peers.contains(&name) {
            ops.push(create(api::BGP_PEER_KIND, &name, spec));
        }
        peer_names.push(name);
    }
    let configuration = bgp::MIGRATED_CONFIGURATION;
    if !configurations.contains(configuration) {
        let mut spec = Map::new();
        spec.insert("mode".into(), "BGP".into());
        let selector = speaker_node_selector(&settings, &mut report);
        if !selector.is_empty() {
            spec.insert("nodeSelector".into(), json!(selector));
        }
        if !peer_names.is_empty() {
            spec.insert("bgp".into(), json!({"peerNames": peer_names}));
        }
        if !advertisements.is_empty() {
            spec.insert("advertisements".into(), advertisements.into());
        }
        ops.push(create(api::CONFIGURATION_KIND, configuration, spec.into()));
    }
    Outcome { ops, skipped: report.0 }
}

/// A `bgp` pool of the settings, with its valid entries.
struct BgpPool {
    name: String,
    addresses: Vec<String>,
    advertisements: Vec<Value>,
}

fn read_bgp_pools(settings: &Value, report: &mut Report) -> Vec<BgpPool> {
    let Some(list) = settings.get("addressPools").and_then(Value::as_array) else {
        return Vec::new();
    };
    let mut out: Vec<BgpPool> = Vec::new();
    for (index, pool) in list.iter().enumerate() {
        if pool.get("protocol").and_then(Value::as_str) != Some("bgp") {
            continue;
        }
        let name = match pool.get("name").and_then(Value::as_str) {
            Some(name) if !name.is_empty() => name.to_owned(),
            _ => format!("{}{index}", bgp::MIGRATED_POOL_PREFIX),
        };
        if !is_dns_subdomain(&name) || out.iter().any(|p| p.name == name) {
            report.skip(
                SkipReason::InvalidName,
                format!(
                    "addressPools[{index}]: {name:?} is no valid, unique object name; not migrated"
                ),
            );
            continue;
        }
        let mut addresses = Vec::new();
        for entry in pool.get("addresses").and_then(Value::as_array).into_iter().flatten() {
            match entry.as_str().and_then(normalize_entry) {
                Some(a) if !addresses.contains(&a) => addresses.push(a),
                Some(_) => {}
                None => report.skip(
                    SkipReason::InvalidPoolEntry,
                    format!("addressPools[{index}] ({name}): entry {entry} is no CIDR or range; left out"),
                ),
            }
        }
        addresses.truncate(POOL_MAX_ENTRIES as usize);
        if addresses.is_empty() {
            report.skip(
                SkipReason::InvalidPoolEntry,
                format!("addressPools[{index}] ({name}): no valid address; not migrated"),
            );
            continue;
        }
        let advertisements =
            pool.get("bgp-advertisements").and_then(Value::as_array).cloned().unwrap_or_default();
        out.push(BgpPool { name, addresses, advertisements });
    }
    out
}

/// Each peer as `(peer-<index>, spec)`; a peer the peer schema would refuse is left out.
fn read_peers(settings: &Value, report: &mut Report) -> Vec<(String, Value)> {
    let Some(list) = settings.get("bgpPeers").and_then(Value::as_array) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (index, peer) in list.iter().enumerate() {
        let name = format!("{}{index}", bgp::MIGRATED_PEER_PREFIX);
        match peer_spec(peer, &name, report) {
            Ok(spec) => out.push((name, spec)),
            Err(why) => report.skip(
                SkipReason::InvalidBgpPeer,
                format!("bgpPeers[{index}]: {why}; not migrated"),
            ),
        }
    }
    out
}

fn peer_spec(peer: &Value, name: &str, report: &mut Report) -> Result<Value, String> {
    let address = peer
        .get("peer-address")
        .and_then(Value::as_str)
        .filter(|a| a.parse::<std::net::IpAddr>().is_ok())
        .ok_or("peer-address is no IP address")?;
    let asn = |key: &str| {
        peer.get(key)
            .and_then(Value::as_u64)
            .and_then(|n| u32::try_from(n).ok())
            .filter(|n| *n != 0)
            .ok_or(format!("{key} is no ASN in 1..=4294967295"))
    };
    let mut spec = Map::new();
    spec.insert("peerAddress".into(), address.into());
    spec.insert("peerASN".into(), asn("peer-asn")?.into());
    spec.insert("myASN".into(), asn("my-asn")?.into());
    let mut leave_out = |field: &str, value: &Value, why: &str| {
        report.skip(
            SkipReason::InvalidBgpPeer,
            format!("{name}: {field} {value} {why}; left out, the default applies"),
        );
    };
    if let Some(port) = peer.get("peer-port").filter(|v| !v.is_null()) {
        match port.as_u64().filter(|p| (1..=65535).contains(p)) {
            Some(p) => {
                spec.insert("peerPort".into(), p.into());
            }
            None => leave_out("peer-port", port, "is no TCP port"),
        }
    }
    if let Some(id) = peer.get("router-id").filter(|v| !v.is_null()) {
        match id.as_str().filter(|s| s.parse::<std::net::Ipv4Addr>().is_ok()) {
            Some(s) => {
                spec.insert("routerID".into(), s.into());
            }
            None => leave_out("router-id", id, "is no IPv4 address (RFC 6286 wants 4 bytes)"),
        }
    }
    if let Some(hold) = peer.get("hold-time").filter(|v| !v.is_null()) {
        match legacy_hold_time(hold) {
            Some(ms) if ms == 0 || ms >= MIN_HOLD_TIME_MS => {
                // Kept as written when the peer schema takes it (`90s` stays `90s`).
                let text = hold.as_str().filter(|t| peer_schema_duration(t));
                spec.insert(
                    "holdTime".into(),
                    text.map_or_else(|| format_duration(ms), str::to_owned).into(),
                );
            }
            _ => leave_out("hold-time", hold, "is neither 0 nor at least 3s"),
        }
    }
    Ok(spec.into())
}

/// A hold time of the classic settings in milliseconds: seconds as a number, or a duration
/// string with `y w d h m s ms` units (their pattern), `0` alone meaning none.
fn legacy_hold_time(value: &Value) -> Option<u64> {
    if let Some(seconds) = value.as_u64() {
        return seconds.checked_mul(1000);
    }
    let text = value.as_str()?;
    if text == "0" {
        return Some(0);
    }
    const UNITS: [(&str, u64); 7] = [
        ("ms", 1),
        ("y", 365 * 86_400_000),
        ("w", 7 * 86_400_000),
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
    ];
    let (mut rest, mut total) = (text, 0u64);
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).filter(|&i| i > 0)?;
        let number: u64 = rest[..digits].parse().ok()?;
        let unit = &rest[digits..];
        let (suffix, scale) = UNITS.iter().find(|(u, _)| unit.starts_with(u))?;
        total = total.checked_add(number.checked_mul(*scale)?)?;
        rest = &unit[suffix.len()..];
    }
    Some(total)
}

/// Whether a duration [`legacy_hold_time`] read has only the units the peer schema accepts
/// (`ms`, `s`, `m`, `h`; a bare `0` has none).
fn peer_schema_duration(text: &str) -> bool {
    text != "0" && !text.contains(['y', 'w', 'd'])
}

/// Milliseconds as a duration the peer schema accepts: `90s`, `1m30s`, `1500ms`.
fn format_duration(ms: u64) -> String {
    if !ms.is_multiple_of(1000) {
        return format!("{ms}ms");
    }
    let seconds = ms / 1000;
    match (seconds / 60, seconds % 60) {
        (0, s) => format!("{s}s"),
        (m, 0) => format!("{m}m"),
        (m, s) => format!("{m}m{s}s"),
    }
}

fn read_communities(settings: &Value, report: &mut Report) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (key, value) in
        settings.get("bgpCommunities").and_then(Value::as_object).into_iter().flatten()
    {
        match value.as_str() {
            Some(v) => {
                out.insert(key.clone(), v.to_owned());
            }
            None => report.skip(
                SkipReason::WrongType,
                format!("bgpCommunities.{key} is not a string: {value}"),
            ),
        }
    }
    out
}

/// One advertisement of `pool` from a `bgp-advertisements` entry: community keys resolved
/// through `bgpCommunities` (a value that is no key is taken literally), and only communities
/// the configuration schema accepts kept.
fn advertisement(
    pool: &str,
    adv: &Value,
    communities: &BTreeMap<String, String>,
    report: &mut Report,
) -> Value {
    let mut attrs = Map::new();
    let mut resolved = Vec::new();
    for key in adv.get("communities").and_then(Value::as_array).into_iter().flatten() {
        let Some(key) = key.as_str() else { continue };
        let value = communities.get(key).map_or(key, String::as_str);
        if is_community(value) {
            resolved.push(value.to_owned());
        } else {
            report.skip(
                SkipReason::InvalidCommunity,
                format!("pool {pool}: community {value:?} is not ASN:value with 16-bit parts or a well-known name; left out"),
            );
        }
    }
    if !resolved.is_empty() {
        attrs.insert("communities".into(), resolved.into());
    }
    if let Some(pref) = adv.get("localpref").and_then(Value::as_u64) {
        match u32::try_from(pref) {
            Ok(p) => {
                attrs.insert("localPref".into(), p.into());
            }
            Err(_) => report.skip(
                SkipReason::WrongType,
                format!("pool {pool}: localpref {pref} does not fit 32 bits; left out"),
            ),
        }
    }
    if let Some(len) = adv.get("aggregation-length").and_then(Value::as_u64) {
        match u8::try_from(len).ok().filter(|l| *l <= 128) {
            Some(l) => {
                attrs.insert("aggregationLength".into(), l.into());
            }
            None => report.skip(
                SkipReason::WrongType,
                format!(
                    "pool {pool}: aggregation-length {len} is longer than any prefix; left out"
                ),
            ),
        }
    }
    let mut out = Map::new();
    out.insert("poolNames".into(), json!([pool]));
    if !attrs.is_empty() {
        out.insert("bgp".into(), attrs.into());
    }
    out.into()
}

/// Whether a community is one the configuration schema accepts as a standard community: both
/// parts 16-bit, or a well-known name, or `none`.
fn is_community(value: &str) -> bool {
    if value == "none" || WELL_KNOWN_COMMUNITIES.iter().any(|(name, _)| *name == value) {
        return true;
    }
    let part =
        |p: &str| !p.is_empty() && (p == "0" || !p.starts_with('0')) && p.parse::<u16>().is_ok();
    value.split_once(':').is_some_and(|(a, b)| part(a) && part(b))
}

fn speaker_node_selector(settings: &Value, report: &mut Report) -> BTreeMap<String, String> {
    let selector = settings.pointer("/speaker/nodeSelector");
    match selector.map(|s| crate::types::string_map(&json!({"s": s}), "s")) {
        None => BTreeMap::new(),
        Some(Ok(map)) => map,
        Some(Err(e)) => {
            report.skip(SkipReason::WrongType, format!("speaker.nodeSelector: {e}; not migrated"));
            BTreeMap::new()
        }
    }
}

fn create(kind: &str, name: &str, spec: Value) -> KubeOperation {
    let mut labels_ = module_labels();
    labels_.insert(labels::AUTO_GENERATED_BY.into(), labels::AUTO_GENERATED_BY_VALUE.into());
    labels_.insert(labels::BACKUP_CLUSTER_CONFIG.into(), "true".into());
    let object = json!({
        "apiVersion": api::CLASS_API_VERSION,
        "kind": kind,
        "metadata": {"name": name, "labels": labels_},
        "spec": spec,
    });
    KubeOperation::CreateIfNotExists { object: object.into() }
}

#[cfg(test)]
mod tests;
