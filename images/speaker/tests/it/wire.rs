//! On the wire: the client namespace's own kernel resolves addresses through a bridge, and its
//! neighbour table shows who answered. Addresses come from the documentation ranges only.

use anyhow::Result;

use crate::lab::Lab;

/// Client and one speaker node `a` on the bridge; the client has 192.0.2.1/24, 2001:db8::1/64.
fn client_and_node_a(tag: &str) -> Result<Option<Lab>> {
    let Some(mut lab) = Lab::new(tag) else {
        return Ok(None);
    };
    lab.add_host("c", "eth0", &["192.0.2.1/24", "2001:db8::1/64"])?;
    lab.add_host("a", "eth0", &[])?;
    Ok(Some(lab))
}

#[test]
fn wire_answers_owned_ipv4_and_ipv6_with_the_node_mac() -> Result<()> {
    let Some(mut lab) = client_and_node_a("own")? else {
        return Ok(());
    };
    let state = lab.write_state(
        "state.yaml",
        "addresses:\n- {ip: 192.0.2.10, node: a}\n- {ip: '2001:db8::10', node: a, backups: [b]}\n",
    )?;
    lab.speaker("a", "a", &state)?;
    let a_mac = lab.mac("a", "eth0")?;

    lab.resolve("c", "192.0.2.10")?;
    assert_eq!(lab.resolved_mac("c", "eth0", "192.0.2.10")?, a_mac);
    lab.resolve("c", "2001:db8::10")?;
    assert_eq!(lab.resolved_mac("c", "eth0", "2001:db8::10")?, a_mac);

    // The speaker joined the solicited-node group of its IPv6 address (NIC filter + MLD).
    assert!(lab.ip("a", &["maddress", "show", "dev", "eth0"])?.contains("ff02::1:ff00:10"));
    assert!(
        lab.metric("a", r#"metallb_speaker_replies_sent_total{iface="eth0",family="ipv4"}"#)?
            >= 1.0
    );
    assert!(
        lab.metric("a", r#"metallb_speaker_replies_sent_total{iface="eth0",family="ipv6"}"#)?
            >= 1.0
    );
    lab.passed("wire_answers_owned_ipv4_and_ipv6_with_the_node_mac");
    Ok(())
}

#[test]
fn wire_stays_silent_for_addresses_not_owned() -> Result<()> {
    let Some(mut lab) = client_and_node_a("notours")? else {
        return Ok(());
    };
    // Node b announces these, and b runs no speaker: nobody may answer.
    let state = lab.write_state(
        "state.yaml",
        "addresses:\n- {ip: 192.0.2.40, node: b}\n- {ip: '2001:db8::40', node: b}\n",
    )?;
    lab.speaker("a", "a", &state)?;

    lab.resolve("c", "192.0.2.40")?;
    lab.resolve("c", "2001:db8::40")?;
    assert_eq!(lab.unresolved("c", "eth0", "192.0.2.40")?, None);
    assert_eq!(lab.unresolved("c", "eth0", "2001:db8::40")?, None);
    // The speaker saw the requests and refused them for the right reason.
    assert!(
        lab.metric("a", r#"metallb_speaker_drops_total{iface="eth0",reason="not_ours"}"#)? >= 2.0
    );
    lab.passed("wire_stays_silent_for_addresses_not_owned");
    Ok(())
}

#[test]
fn wire_answers_only_on_allowed_interfaces() -> Result<()> {
    let Some(mut lab) = client_and_node_a("iface")? else {
        return Ok(());
    };
    // A second, direct link c:eth1 — a:eth1 on 198.51.100.0/24.
    lab.cable("c", "eth1", "a", "eth1")?;
    lab.ip("c", &["addr", "add", "198.51.100.1/24", "dev", "eth1"])?;
    let state = lab.write_state(
        "state.yaml",
        "classes:\n  side: {interfaces: [eth1]}\n\
         addresses:\n\
         - {ip: 198.51.100.20, class: side, node: a}\n\
         - {ip: 192.0.2.30, class: side, node: a}\n\
         - {ip: 192.0.2.10, node: a}\n",
    )?;
    lab.speaker("a", "a", &state)?;
    let (eth0_mac, eth1_mac) = (lab.mac("a", "eth0")?, lab.mac("a", "eth1")?);
    assert_ne!(eth0_mac, eth1_mac);

    // Allowed interface: answered with *that* interface's MAC.
    lab.resolve("c", "198.51.100.20")?;
    assert_eq!(lab.resolved_mac("c", "eth1", "198.51.100.20")?, eth1_mac);
    // Same class asked on eth0, which the class does not list: no answer.
    lab.resolve("c", "192.0.2.30")?;
    assert_eq!(lab.unresolved("c", "eth0", "192.0.2.30")?, None);
    assert!(
        lab.metric(
            "a",
            r#"metallb_speaker_drops_total{iface="eth0",reason="interface_not_allowed"}"#
        )? >= 1.0
    );
    // Control: a class-less address on eth0 is answered there.
    lab.resolve("c", "192.0.2.10")?;
    assert_eq!(lab.resolved_mac("c", "eth0", "192.0.2.10")?, eth0_mac);
    lab.passed("wire_answers_only_on_allowed_interfaces");
    Ok(())
}

#[test]
fn wire_moves_an_address_by_gratuitous_announcements() -> Result<()> {
    let Some(mut lab) = client_and_node_a("move")? else {
        return Ok(());
    };
    lab.add_host("b", "eth0", &[])?;
    let on_a = "addresses:\n- {ip: 192.0.2.10, node: a}\n- {ip: '2001:db8::10', node: a}\n";
    let state = lab.write_state("state.yaml", on_a)?;
    lab.speaker("a", "a", &state)?;
    lab.speaker("b", "b", &state)?;
    let (a_mac, b_mac) = (lab.mac("a", "eth0")?, lab.mac("b", "eth0")?);

    lab.resolve("c", "192.0.2.10")?;
    lab.resolve("c", "2001:db8::10")?;
    assert_eq!(lab.resolved_mac("c", "eth0", "192.0.2.10")?, a_mac);
    assert_eq!(lab.resolved_mac("c", "eth0", "2001:db8::10")?, a_mac);
    // Let a's take-over burst (3 × both GARP forms, 3 NAs) finish, so only b speaks after the move.
    lab.wait_for("a's burst", || {
        Ok(lab
            .metric("a", r#"metallb_speaker_gratuitous_sent_total{iface="eth0",family="ipv4"}"#)?
            >= 6.0
            && lab.metric(
                "a",
                r#"metallb_speaker_gratuitous_sent_total{iface="eth0",family="ipv6"}"#,
            )? >= 3.0)
    })?;

    // Move both addresses to b. The client sends nothing from here on: only b's gratuitous
    // ARP and unsolicited NA (O flag) can change its existing entries.
    lab.write_state("state.yaml", &on_a.replace("node: a", "node: b"))?;
    lab.wait_for("client entries moved to b", || {
        let v4 = lab.neighbour("c", "eth0", "192.0.2.10")?;
        let v6 = lab.neighbour("c", "eth0", "2001:db8::10")?;
        let moved = |e: &Option<netlab::Neighbour>| {
            e.as_ref().and_then(|n| n.lladdr.as_deref()) == Some(b_mac.as_str())
        };
        Ok(moved(&v4) && moved(&v6))
    })?;
    // A gratuitous update leaves the entry STALE; a fresh solicited answer would make it
    // REACHABLE. So this proves no re-resolution happened.
    for addr in ["192.0.2.10", "2001:db8::10"] {
        let entry = lab.neighbour("c", "eth0", addr)?.expect("entry exists");
        assert_eq!(entry.states, ["STALE"], "{addr}");
    }
    assert!(
        lab.metric("b", r#"metallb_speaker_gratuitous_sent_total{iface="eth0",family="ipv4"}"#)?
            >= 2.0
    );
    // a left the solicited-node group it no longer needs; b joined it.
    lab.wait_for("a leaves the group", || {
        Ok(!lab.ip("a", &["maddress", "show", "dev", "eth0"])?.contains("ff02::1:ff00:10"))
    })?;
    assert!(lab.ip("b", &["maddress", "show", "dev", "eth0"])?.contains("ff02::1:ff00:10"));
    lab.passed("wire_moves_an_address_by_gratuitous_announcements");
    Ok(())
}

#[test]
fn wire_answers_unicast_reachability_probes() -> Result<()> {
    let Some(mut lab) = client_and_node_a("nud")? else {
        return Ok(());
    };
    // Shorten the client's neighbour timers so the kernel reaches PROBE within seconds:
    // REACHABLE for 0.25–0.75 s, then one second in DELAY before the unicast probes.
    for family in ["ipv4", "ipv6"] {
        for (knob, value) in [("base_reachable_time_ms", "500"), ("delay_first_probe_time", "1")] {
            lab.sysctl("c", &format!("net/{family}/neigh/eth0/{knob}"), value)?;
        }
    }
    let state = lab.write_state(
        "state.yaml",
        "addresses:\n- {ip: 192.0.2.10, node: a}\n- {ip: '2001:db8::10', node: a}\n",
    )?;
    lab.speaker("a", "a", &state)?;
    let a_mac = lab.mac("a", "eth0")?;
    for addr in ["192.0.2.10", "2001:db8::10"] {
        lab.resolve("c", addr)?;
        assert_eq!(lab.resolved_mac("c", "eth0", addr)?, a_mac);
        // Once the entry leaves REACHABLE, traffic to it goes through DELAY and PROBE: unicast
        // ARP requests / unicast NS to the address itself at a's MAC. Only an answer to those
        // brings the entry back to REACHABLE; unanswered, it ends FAILED (MetalLB #2920).
        let mut probing = false;
        lab.wait_for(&format!("{addr} confirmed by a unicast probe"), || {
            let Some(netlab::Neighbour { states, lladdr }) = lab.neighbour("c", "eth0", addr)?
            else {
                anyhow::bail!("{addr}: entry vanished");
            };
            let state = states.first().map(String::as_str).unwrap_or_default();
            anyhow::ensure!(state != "FAILED", "{addr}: unicast probe unanswered");
            match state {
                // Idle entry: use it, so the kernel must verify it.
                "STALE" => lab.resolve("c", addr)?,
                "DELAY" | "PROBE" => probing = true,
                _ => {}
            }
            Ok(probing && state == "REACHABLE" && lladdr.as_deref() == Some(a_mac.as_str()))
        })?;
    }
    lab.passed("wire_answers_unicast_reachability_probes");
    Ok(())
}

#[test]
fn wire_picks_up_an_interface_that_appears_later() -> Result<()> {
    let Some(mut lab) = client_and_node_a("rescan")? else {
        return Ok(());
    };
    let state = lab.write_state("state.yaml", "addresses:\n- {ip: 198.51.100.20, node: a}\n")?;
    lab.speaker("a", "a", &state)?;
    assert_eq!(lab.metric("a", "metallb_speaker_interfaces")?, 1.0);

    // A new uplink appears after start-up; the rescan opens it.
    lab.cable("c", "eth1", "a", "eth1")?;
    lab.ip("c", &["addr", "add", "198.51.100.1/24", "dev", "eth1"])?;
    lab.wait_for("speaker listens on eth1", || {
        Ok(lab.metric("a", "metallb_speaker_interfaces")? == 2.0)
    })?;
    lab.resolve("c", "198.51.100.20")?;
    assert_eq!(lab.resolved_mac("c", "eth1", "198.51.100.20")?, lab.mac("a", "eth1")?);
    lab.passed("wire_picks_up_an_interface_that_appears_later");
    Ok(())
}

#[test]
fn wire_a_class_naming_a_missing_interface_stops_nothing_else() -> Result<()> {
    let Some(mut lab) = client_and_node_a("missing")? else {
        return Ok(());
    };
    // front names an interface a lacks; back names one too, but only for b's addresses.
    let state = lab.write_state(
        "state.yaml",
        "classes: {front: {interfaces: [nosuch0]}, back: {interfaces: [nosuch1]}}\n\
         addresses:\n\
         - {ip: 192.0.2.10, node: a, class: front}\n\
         - {ip: 192.0.2.11, node: a}\n\
         - {ip: 192.0.2.12, node: b, class: back}\n",
    )?;
    // Starts and becomes ready: the missing interface is not fatal.
    lab.speaker("a", "a", &state)?;
    let a_mac = lab.mac("a", "eth0")?;
    lab.resolve("c", "192.0.2.11")?;
    assert_eq!(lab.resolved_mac("c", "eth0", "192.0.2.11")?, a_mac, "other addresses answered");
    lab.resolve("c", "192.0.2.10")?;
    assert_eq!(lab.unresolved("c", "eth0", "192.0.2.10")?, None, "not answered on eth0");
    let front = r#"metallb_speaker_missing_interfaces{class="front",iface="nosuch0"}"#;
    assert_eq!(lab.metric("a", front)?, 1.0);
    let back = r#"metallb_speaker_missing_interfaces{class="back",iface="nosuch1"}"#;
    assert_eq!(lab.metric("a", back)?, 0.0, "not a's business");
    assert_eq!(lab.metric("a", "metallb_speaker_unanswered_ips")?, 1.0);
    let ready = lab.http_get("a", "/readyz")?;
    assert!(ready.contains("warning: class front: interface nosuch0 does not exist"), "{ready}");
    assert!(ready.contains("warning: address 192.0.2.10: answered on no interface"), "{ready}");

    // The interface appears later: the address is answered there, the report clears.
    lab.cable("c", "eth1", "a", "nosuch0")?;
    lab.ip("c", &["addr", "add", "198.51.100.1/24", "dev", "eth1"])?;
    lab.wait_for("the missing interface is picked up", || {
        Ok(lab.metric("a", "metallb_speaker_unanswered_ips")? == 0.0)
    })?;
    assert_eq!(lab.metric("a", front)?, 0.0);
    lab.passed("wire_a_class_naming_a_missing_interface_stops_nothing_else");
    Ok(())
}
