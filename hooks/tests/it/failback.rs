//! The failback hold-down through the real binary: a node that comes back gets no IP until it
//! has been healthy for `failbackHoldDownSeconds`, and the `failback` timer moves the IP back
//! once the hold-down has ended.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Result;
use serde_json::{Value, json};
use testkit::Framework;

use super::{assert_second_run_is_a_no_op, children, started};

/// The framework's clock and the hook's are the same: the machine's.
fn ago(seconds: u64) -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("after 1970").as_secs();
    addon::rfc3339(now - seconds)
}

fn set_ready(fw: &mut Framework, node: &str, ready: bool, since: &str) -> Result<()> {
    let mut n = fw.cluster().get(None, "Node", "", node).unwrap().clone();
    let status = if ready { "True" } else { "False" };
    n["status"]["conditions"] =
        json!([{"type": "Ready", "status": status, "lastTransitionTime": since}]);
    fw.cluster_mut().insert(n)?;
    Ok(())
}

/// The node announcing `child`.
fn node_of(fw: &Framework, child: &str) -> Option<String> {
    children(fw, "web")[child].1.clone()
}

#[test]
fn a_returning_node_gets_its_ip_back_only_after_the_hold_down() -> Result<()> {
    let mut fw = started(|_| {})?;
    let before = children(&fw, "web");
    let (victim, _) = before.iter().find(|(_, (_, n))| n.as_deref() == Some("front-1")).unwrap();
    let victim = victim.clone();

    set_ready(&mut fw, "front-1", false, &ago(20))?;
    fw.run_until_quiet()?;
    let took_over = node_of(&fw, &victim).expect("placed");
    assert_ne!(took_over, "front-1");

    // Back 5 s ago: held down (default 60 s), the IP stays where it went; the timer keeps it.
    set_ready(&mut fw, "front-1", true, &ago(5))?;
    fw.run_until_quiet()?;
    assert_eq!(node_of(&fw, &victim).as_deref(), Some(took_over.as_str()));
    fw.run_schedule("failback")?;
    fw.run_until_quiet()?;
    assert_eq!(node_of(&fw, &victim).as_deref(), Some(took_over.as_str()));
    let backups = fw.cluster().get(None, "SDNInternalL2LBService", "web", &victim).unwrap()
        ["status"]["backupNodes"]
        .clone();
    assert!(!backups.to_string().contains("front-1"), "held down, no backup: {backups}");

    // The hold-down has ended (the transition time moves only in the test: no event): the
    // timer re-plans and the distinct-node rule moves one IP back to front-1.
    let mut n = fw.cluster().get(None, "Node", "", "front-1").unwrap().clone();
    n["status"]["conditions"][0]["lastTransitionTime"] = Value::String(ago(61));
    fw.cluster_mut().insert(n)?;
    fw.run_schedule("failback")?;
    fw.run_until_quiet()?;
    let on_front_1 =
        children(&fw, "web").values().filter(|(_, n)| n.as_deref() == Some("front-1")).count();
    assert_eq!(on_front_1, 1, "{:?}", children(&fw, "web"));
    for (name, (ip, _)) in children(&fw, "web") {
        assert_eq!(ip, before[&name].0, "{name} keeps its IP");
    }
    assert_second_run_is_a_no_op(&mut fw)
}

#[test]
fn the_timer_does_nothing_while_no_hold_down_runs() -> Result<()> {
    let mut fw = started(|_| {})?;
    let metrics = format!("{:?}", fw.metrics());
    let runs = fw.runs().len();
    fw.run_schedule("failback")?;
    let run = &fw.runs()[runs..];
    assert_eq!(run.len(), 1);
    assert!(run[0].kubernetes.is_empty() && run[0].values_patch.is_empty(), "{:?}", run[0]);
    assert_eq!(format!("{:?}", fw.metrics()), metrics, "the discovery metrics stay");
    Ok(())
}
