//! What the router's kernel forwards with: the next hops of one prefix in `ip -j route`.
//!
//! iproute2 prints a single-path route with `gateway`, a multipath one with `nexthops[]` (each
//! with `gateway`), and a route through a nexthop object (FRR's zebra uses them) with `nhid`
//! plus, under the kernel's default `net.ipv4.nexthop_compat_mode = 1`, the same `gateway` or
//! `nexthops` fields. Older kernels list IPv6 multipath routes as several entries of one
//! prefix; every entry's gateways count.

use std::collections::BTreeSet;
use std::net::IpAddr;

use serde_json::Value;

/// The gateways of every entry of `json` (the output of `ip -j route show exact PREFIX`).
pub(super) fn next_hops(json: &Value) -> Result<BTreeSet<IpAddr>, String> {
    let entries = json.as_array().ok_or("not a JSON list")?;
    let mut hops = BTreeSet::new();
    let mut gateway = |v: &Value| -> Result<(), String> {
        if let Some(text) = v["gateway"].as_str() {
            hops.insert(text.parse().map_err(|e| format!("bad gateway {text:?}: {e}"))?);
        }
        Ok(())
    };
    for entry in entries {
        gateway(entry)?;
        for hop in entry["nexthops"].as_array().into_iter().flatten() {
            gateway(hop)?;
        }
    }
    Ok(hops)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hops(text: &str) -> Result<Vec<String>, String> {
        let json: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        Ok(next_hops(&json)?.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn single_multipath_nexthop_objects_and_split_ipv6_entries() {
        const CASES: [(&str, &[&str]); 5] = [
            ("[]", &[]),
            (
                r#"[{"dst":"203.0.113.10","nhid":6,"gateway":"192.0.2.11","dev":"eth0","protocol":"bgp"}]"#,
                &["192.0.2.11"],
            ),
            (
                r#"[{"dst":"203.0.113.10","protocol":"bird","nexthops":[{"gateway":"192.0.2.12","dev":"eth0"},{"gateway":"192.0.2.11","dev":"eth0"}]}]"#,
                &["192.0.2.11", "192.0.2.12"],
            ),
            (
                r#"[{"dst":"2001:db8:1::10","gateway":"2001:db8::11"},{"dst":"2001:db8:1::10","gateway":"2001:db8::12"}]"#,
                &["2001:db8::11", "2001:db8::12"],
            ),
            (r#"[{"dst":"203.0.113.10","type":"blackhole"}]"#, &[]),
        ];
        for (text, want) in CASES {
            assert_eq!(hops(text).unwrap(), want.to_vec(), "{text}");
        }
        assert!(hops(r#"[{"gateway":"nope"}]"#).is_err());
        assert!(hops(r#"{"gateway":"192.0.2.1"}"#).is_err());
    }
}
