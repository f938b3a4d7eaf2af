//! A real lab on this machine (root): namespaces on the bridge, the kernel's neighbour table,
//! processes, and every way of tearing down. Prints `SKIPPED` and passes without root, unless
//! `METALLB_REQUIRE_WIRE_TESTS=1`.

mod router;
mod router_failure;

use std::io::{BufRead, BufReader};

use netlab::{Lab, Spawn};

const FAMILY: &str = "nltest";

fn lab(test: &str, tag: &str) -> Option<Lab> {
    if !netlab::gate(test, &["bash"]) {
        return None;
    }
    Some(Lab::new(FAMILY, tag).expect("lab"))
}

#[test]
fn two_namespaces_resolve_each_other_through_the_bridge() -> netlab::Result<()> {
    let Some(mut lab) = lab("two_namespaces_resolve_each_other_through_the_bridge", "arp") else {
        return Ok(());
    };
    for (name, addr) in [("a", "192.0.2.1/24"), ("b", "192.0.2.2/24")] {
        lab.add_host(name, "eth0", &[addr])?;
    }
    assert_eq!(lab.neighbour("a", "eth0", "192.0.2.2")?, None);
    lab.resolve("a", "192.0.2.2")?;
    assert_eq!(lab.resolved_mac("a", "eth0", "192.0.2.2")?, lab.mac("b", "eth0")?);
    // Nobody has .3: the kernel gives up and the entry carries no address.
    lab.resolve("a", "192.0.2.3")?;
    assert_eq!(lab.unresolved("a", "eth0", "192.0.2.3")?, None);
    // A pulled cable: b's kernel no longer hears a's requests.
    lab.set_link("b", "eth0", false)?;
    lab.ip("a", &["neigh", "flush", "dev", "eth0"])?;
    lab.resolve("a", "192.0.2.2")?;
    assert_eq!(lab.unresolved("a", "eth0", "192.0.2.2")?, None);
    lab.sysctl("a", "net/ipv4/conf/all/arp_ignore", "1")?;
    assert_eq!(lab.exec("a", &["cat", "/proc/sys/net/ipv4/conf/all/arp_ignore"])?.trim(), "1");
    lab.passed("two_namespaces_resolve_each_other_through_the_bridge");
    Ok(())
}

#[test]
fn processes_run_inside_and_stop_on_request() -> netlab::Result<()> {
    let Some(mut lab) = lab("processes_run_inside_and_stop_on_request", "proc") else {
        return Ok(());
    };
    lab.add_namespace("a")?;
    // The process sees the namespace's interfaces, not the host's.
    let script = "ip -o link show | cut -d: -f2; echo started; exec cat";
    lab.spawn(Spawn::new("a", "shell", "sh").args(["-c", script]).piped_stdout())?;
    let mut lines = BufReader::new(lab.take_stdout("shell")?).lines();
    let first = lines.next().expect("a line").expect("utf-8");
    assert_eq!(first.trim(), "lo");
    assert!(lab.is_running("shell"));
    assert!(matches!(
        lab.spawn(Spawn::new("a", "shell", "true")),
        Err(netlab::Error::ProcessExists(_))
    ));
    // SIGTERM ends `cat` by the default action: not a successful exit.
    assert!(!lab.terminate("shell")?);
    assert!(!lab.is_running("shell"));
    // The label is free again for a restart; stderr goes to the log.
    lab.spawn(Spawn::new("a", "shell", "sh").args(["-c", "echo to-the-log >&2; exec cat"]))?;
    let log = lab.log_path("shell")?;
    lab.wait_for("the log line", || {
        std::fs::read_to_string(&log).map(|t| t.contains("to-the-log"))
    })?;
    lab.kill("shell")?;
    assert!(matches!(lab.kill("nobody"), Err(netlab::Error::NoProcess(_))));
    lab.passed("processes_run_inside_and_stop_on_request");
    Ok(())
}

#[test]
fn every_way_of_ending_removes_the_namespaces() -> netlab::Result<()> {
    if !netlab::gate("every_way_of_ending_removes_the_namespaces", &[]) {
        return Ok(());
    }
    // Drop, also with a process still running.
    let mut lab = Lab::new(FAMILY, "drop")?;
    lab.add_namespace("a")?;
    lab.spawn(Spawn::new("a", "cat", "cat"))?;
    let (prefix, dir) = (lab.prefix().to_owned(), lab.dir().to_owned());
    assert_eq!(netlab::namespaces_with_prefix(&prefix)?.len(), 2, "sw and a");
    lab.succeeded();
    drop(lab);
    assert!(netlab::namespaces_with_prefix(&prefix)?.is_empty());
    assert!(!dir.exists());

    // A cleaner (a signal handler) while the lab is still owned elsewhere; the lab then
    // refuses to build more.
    let mut lab = Lab::new(FAMILY, "clean")?;
    let cleaner = lab.cleaner();
    std::thread::spawn(move || cleaner.clean_up()).join().expect("cleaner thread");
    assert!(netlab::namespaces_with_prefix(lab.prefix())?.is_empty());
    assert!(matches!(lab.add_namespace("late"), Err(netlab::Error::TornDown)));
    drop(lab);

    // What a dead process left (a made-up pid that cannot be running: above pid_max's
    // largest possible value, 2^22) is swept by the next lab of the family.
    let stale = format!("{FAMILY}-9999999-old-");
    netlab::run("ip", &["netns", "add", &format!("{stale}a")])?;
    let lab = Lab::new(FAMILY, "sweep")?;
    assert!(netlab::namespaces_with_prefix(&stale)?.is_empty());
    assert_eq!(netlab::namespaces_with_prefix(lab.prefix())?.len(), 1, "own switch kept");
    drop(lab);
    println!("RAN: every_way_of_ending_removes_the_namespaces (root, network namespaces)");
    Ok(())
}
