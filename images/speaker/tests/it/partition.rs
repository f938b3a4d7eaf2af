//! Split brain on the wire: three speakers with gossip, and the kernel's packet filter (nftables,
//! inside one node's namespace) cutting that node off from the gossip of the other two. The
//! side without a majority must answer for nothing another node may take over; the majority
//! side takes over; healing the partition gives the address back to its owner.

use std::time::{Duration, Instant};

use anyhow::Result;

use crate::lab::Lab;

const NODES: [(&str, &str); 3] =
    [("a", "203.0.113.11"), ("b", "203.0.113.12"), ("c3", "203.0.113.13")];
const PORT: &str = "4218";
const OWNED: &str = r#"metallb_speaker_owned_ips{family="ipv4"}"#;

/// Bound of the sampling loop while the sides settle: detection takes about a second; the
/// bound only turns a hang into a failure.
const SETTLE: Duration = Duration::from_secs(15);

/// Drops gossip to and from `name` (a table of its own, so healing is one delete).
fn cut(lab: &Lab, name: &str) -> Result<()> {
    lab.exec(
        name,
        &[
            "nft",
            &format!(
                "add table inet gossipcut; \
                 add chain inet gossipcut in {{ type filter hook input priority 0 ; }} ; \
                 add chain inet gossipcut out {{ type filter hook output priority 0 ; }} ; \
                 add rule inet gossipcut in udp dport {PORT} drop ; \
                 add rule inet gossipcut out udp dport {PORT} drop"
            ),
        ],
    )?;
    Ok(())
}

fn heal(lab: &Lab, name: &str) -> Result<()> {
    lab.exec(name, &["nft", "delete table inet gossipcut"])?;
    Ok(())
}

fn owns(lab: &Lab, name: &str) -> Result<bool> {
    Ok(lab.metric(name, OWNED)? == 1.0)
}

fn ready(lab: &Lab, name: &str) -> Result<bool> {
    Ok(lab.http_get(name, "/readyz")?.starts_with("HTTP/1.1 200"))
}

/// Samples who claims X until `done` holds; returns the longest stretch during which two nodes
/// claimed it at once (informative: timings are printed, never asserted).
fn sample_until(lab: &Lab, what: &str, done: impl Fn(&[bool; 3]) -> bool) -> Result<Duration> {
    let start = Instant::now();
    let (mut both_since, mut longest): (Option<Instant>, Duration) = (None, Duration::ZERO);
    loop {
        let claims = [owns(lab, "a")?, owns(lab, "b")?, owns(lab, "c3")?];
        let now = Instant::now();
        if claims.iter().filter(|c| **c).count() > 1 {
            let since = *both_since.get_or_insert(now);
            longest = longest.max(now - since);
        } else {
            both_since = None;
        }
        if done(&claims) {
            return Ok(longest);
        }
        anyhow::ensure!(
            start.elapsed() < SETTLE,
            "timed out waiting for {what}: claims {claims:?}"
        );
    }
}

#[test]
fn wire_partition_no_split_brain() -> Result<()> {
    let Some(mut lab) = Lab::needing("part", &["nft"]) else {
        return Ok(());
    };
    lab.add_host("c", "eth0", &["192.0.2.1/24"])?;
    for (name, addr) in NODES {
        lab.add_host(name, "eth0", &[&format!("{addr}/24")])?;
    }
    let key = lab.dir().join("gossip.key");
    std::fs::write(&key, [7u8; 32])?;
    let key = key.display().to_string();
    let peers: Vec<String> = NODES.iter().map(|(_, addr)| format!("{addr}:{PORT}")).collect();
    let peers = peers.join(",");
    let state = lab
        .write_state("state.yaml", "addresses:\n- {ip: 192.0.2.10, node: a, backups: [b, c3]}\n")?;
    for (name, addr) in NODES {
        let bind = format!("{addr}:{PORT}");
        lab.start_speaker(
            name,
            name,
            &state,
            &["--gossip-bind", &bind, "--gossip-peers", &peers, "--gossip-key-file", &key],
        )?;
    }
    for (name, _) in NODES {
        lab.wait_ready(name)?;
    }
    assert!(owns(&lab, "a")? && !owns(&lab, "b")? && !owns(&lab, "c3")?);

    // 1. The second backup is cut off. It sees a and b dead, and without the majority rule it
    //    would take over next to a; with it, it takes over nothing and is not ready.
    cut(&lab, "c3")?;
    lab.wait_for("c3 sees a and b dead", || {
        Ok(lab.metric("c3", r#"metallb_speaker_gossip_members{state="dead"}"#)? == 2.0)
    })?;
    assert!(!owns(&lab, "c3")?, "a cut-off backup must not answer");
    assert_eq!(lab.metric("c3", "metallb_speaker_takeovers_total")?, 0.0);
    assert!(!ready(&lab, "c3")?, "not ready without a majority");
    assert!(
        owns(&lab, "a")? && ready(&lab, "a")? && ready(&lab, "b")?,
        "the majority is unaffected"
    );
    let a_mac = lab.mac("a", "eth0")?;
    lab.resolve("c", "192.0.2.10")?;
    assert_eq!(lab.resolved_mac("c", "eth0", "192.0.2.10")?, a_mac);
    heal(&lab, "c3")?;
    lab.wait_ready("c3")?;

    // 2. The owner is cut off. The majority (b, c3) declares it dead and b takes over; a,
    //    without a majority, releases the address: at most briefly do both claim it.
    cut(&lab, "a")?;
    let cut_at = Instant::now();
    let overlap = sample_until(&lab, "b owning X and a not", |c| !c[0] && c[1] && !c[2])?;
    println!(
        "owner cut off: b alone answers after {:?}; longest overlap of a and b {overlap:?} (informative)",
        cut_at.elapsed()
    );
    lab.wait_for("a sees b and c3 dead", || {
        Ok(lab.metric("a", r#"metallb_speaker_gossip_members{state="dead"}"#)? == 2.0)
    })?;
    assert!(!owns(&lab, "a")?, "a cut-off owner must release what a backup takes over");
    assert!(owns(&lab, "b")? && !owns(&lab, "c3")?);
    assert!(!ready(&lab, "a")?, "so that the hooks move its addresses away");
    let b_mac = lab.mac("b", "eth0")?;
    lab.wait_for("client entry for X points to b", || {
        Ok(lab.neighbour("c", "eth0", "192.0.2.10")?.and_then(|n| n.lladdr).as_deref()
            == Some(b_mac.as_str()))
    })?;

    // 3. Healed: a rejoins (refuting its death), gets its majority back and its address.
    heal(&lab, "a")?;
    let overlap = sample_until(&lab, "a owning X again and b not", |c| c[0] && !c[1] && !c[2])?;
    println!("healed: longest overlap of a and b {overlap:?} (informative)");
    lab.wait_ready("a")?;
    lab.passed("wire_partition_no_split_brain");
    Ok(())
}
