//! Take-over on the wire: three speakers with real gossip between them, one file source, and
//! a client whose kernel's neighbour table shows who announces. Killing the owner's speaker
//! (`kill -9`, no goodbye) must move the address to the first backup.

use std::time::Instant;

use anyhow::Result;

use crate::lab::Lab;

/// Client `c` and nodes `a`, `b`, `c3` on the bridge, a speaker with gossip on each node, and
/// X = 192.0.2.10 owned by `a` with backups `[b, c3]` and resolved by the client to `a`'s MAC.
/// Returns the lab and `b`'s MAC, or `None` when the lab is unavailable.
fn owner_and_two_backups(tag: &str) -> Result<Option<(Lab, String)>> {
    let Some(mut lab) = Lab::new(tag) else {
        return Ok(None);
    };
    lab.add_host("c", "eth0", &["192.0.2.1/24"])?;
    // The nodes' own addresses carry the gossip; X = 192.0.2.10 is only ever announced.
    let nodes = [("a", "203.0.113.11"), ("b", "203.0.113.12"), ("c3", "203.0.113.13")];
    for (name, addr) in nodes {
        lab.add_host(name, "eth0", &[&format!("{addr}/24")])?;
    }
    let key = lab.dir().join("gossip.key");
    std::fs::write(&key, [7u8; 32])?;
    let key = key.display().to_string();
    let peers = nodes.iter().map(|(_, addr)| format!("{addr}:4218")).collect::<Vec<_>>().join(",");
    let state = lab
        .write_state("state.yaml", "addresses:\n- {ip: 192.0.2.10, node: a, backups: [b, c3]}\n")?;
    for (name, addr) in nodes {
        let bind = format!("{addr}:4218");
        lab.start_speaker(
            name,
            name,
            &state,
            &["--gossip-bind", &bind, "--gossip-peers", &peers, "--gossip-key-file", &key],
        )?;
    }
    for (name, _) in nodes {
        lab.wait_ready(name)?;
    }
    for (name, _) in nodes {
        lab.wait_for(&format!("{name} sees three live members"), || {
            Ok(lab.metric(name, r#"metallb_speaker_gossip_members{state="alive"}"#)? == 3.0)
        })?;
    }
    let (a_mac, b_mac) = (lab.mac("a", "eth0")?, lab.mac("b", "eth0")?);
    lab.resolve("c", "192.0.2.10")?;
    assert_eq!(lab.resolved_mac("c", "eth0", "192.0.2.10")?, a_mac);
    Ok(Some((lab, b_mac)))
}

/// Waits until the client's entry for X carries `b_mac` and checks that exactly `b` took over.
fn assert_b_took_over(lab: &Lab, b_mac: &str, since: Instant) -> Result<()> {
    // The client sends nothing: only b's gratuitous ARP can change its entry.
    lab.wait_for("client entry for X points to b", || {
        let entry = lab.neighbour("c", "eth0", "192.0.2.10")?;
        Ok(entry.and_then(|n| n.lladdr).as_deref() == Some(b_mac))
    })?;
    println!("take-over observed by the client after {:?} (informative)", since.elapsed());
    assert_eq!(lab.metric("b", "metallb_speaker_takeovers_total")?, 1.0);
    assert_eq!(lab.metric("b", r#"metallb_speaker_owned_ips{family="ipv4"}"#)?, 1.0);
    // c3 is the second backup: it must stay silent while b is alive.
    assert_eq!(lab.metric("c3", r#"metallb_speaker_owned_ips{family="ipv4"}"#)?, 0.0);
    assert_eq!(lab.metric("c3", "metallb_speaker_takeovers_total")?, 0.0);
    Ok(())
}

#[test]
fn wire_failover_backup_takes_over_a_killed_owner() -> Result<()> {
    let Some((mut lab, b_mac)) = owner_and_two_backups("fo")? else {
        return Ok(());
    };
    lab.kill("a")?;
    assert_b_took_over(&lab, &b_mac, Instant::now())?;
    // Detected by the failure detector: a is dead, not left.
    assert_eq!(lab.metric("b", r#"metallb_speaker_gossip_members{state="dead"}"#)?, 1.0);
    lab.passed("wire_failover_backup_takes_over_a_killed_owner");
    Ok(())
}

#[test]
fn wire_failover_a_stopping_owner_hands_over_by_leaving() -> Result<()> {
    let Some((mut lab, b_mac)) = owner_and_two_backups("lv")? else {
        return Ok(());
    };
    let stopped = Instant::now();
    assert!(lab.terminate("a")?, "a exits cleanly on SIGTERM");
    assert_b_took_over(&lab, &b_mac, stopped)?;
    // The departure was announced, not detected.
    assert_eq!(lab.metric("b", r#"metallb_speaker_gossip_members{state="left"}"#)?, 1.0);
    assert_eq!(lab.metric("b", r#"metallb_speaker_gossip_members{state="dead"}"#)?, 0.0);
    lab.passed("wire_failover_a_stopping_owner_hands_over_by_leaving");
    Ok(())
}
