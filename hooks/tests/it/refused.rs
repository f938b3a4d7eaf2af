//! One object whose write the API server refuses never blocks the module (issue #19): the
//! framework retries the failed run, the hook counts the refused write in its write ledger,
//! holds it back after a few runs and reports it; every other write and Service goes on.

use anyhow::Result;
use serde_json::{Value, json};

use super::{CHILD, assert_second_run_is_a_no_op, children, condition, framework, ingress};

/// Runs the framework retries before the write is held back: one per attempt the ledger counts.
const RETRIES: usize = 5;

#[test]
fn a_child_the_server_refuses_is_held_back_and_reported() -> Result<()> {
    let mut fw = framework(|_| {})?.with_retries(RETRIES);
    fw.cluster_mut().refuse_writes(
        None,
        CHILD,
        "web",
        "web-front-1",
        "admission webhook \"policy.example.com\" denied the request",
    )?;
    fw.start()?;
    fw.run_until_quiet()?;

    // The failed runs were retried until the hook held the write back (three attempts).
    assert_eq!(fw.failures().len(), 3, "{:#?}", fw.failures());
    assert!(fw.failures().iter().all(|f| f.contains("denied the request")));
    // The other children and the Service's status are written.
    let got = children(&fw, "web");
    assert_eq!(got.keys().collect::<Vec<_>>(), ["web-front-0", "web-front-2"]);
    assert!(got.values().all(|(ip, node)| ip.is_some() && node.is_some()), "{got:?}");
    // Only the announced IPs are published, and the Service says why one is missing.
    let published = ingress(&fw, "web", "web");
    let announced: Vec<String> = got.values().filter_map(|(ip, _)| ip.clone()).collect();
    assert_eq!(published.len(), 2);
    assert!(published.iter().all(|ip| announced.contains(ip)), "{published:?}");
    let held = condition(&fw, "web", "web", "ChildObjectsWritten");
    assert_eq!((&held["status"], &held["reason"]), (&json!("False"), &json!("WriteRefused")));
    assert!(held["message"].as_str().unwrap().contains("web-front-1"), "{held}");
    // The metric names the write; the values were applied (the run succeeded).
    let metrics = format!("{:?}", fw.metrics());
    assert!(metrics.contains("d8_metallb_refused_writes"), "{metrics}");
    assert!(fw.value("internal.l2loadbalancers").is_some_and(Value::is_array));
    assert_second_run_is_a_no_op(&mut fw)?;

    // The policy is fixed: after the retry period the write goes through. The period is five
    // minutes of the hook's clock; the test rewinds the ledger's record instead of waiting.
    fw.cluster_mut().allow_writes(None, CHILD, "web", "web-front-1")?;
    let mut ledger = fw
        .cluster()
        .get(Some("v1"), "ConfigMap", "d8-metallb", "metallb-write-ledger")
        .expect("the ledger exists")
        .clone();
    let stored = ledger["data"]["writes"].as_str().unwrap_or("[]");
    let rewound: Vec<Value> = serde_json::from_str::<Vec<Value>>(stored)?
        .into_iter()
        .map(|mut e| {
            e["last"] = json!(0);
            e
        })
        .collect();
    ledger["data"]["writes"] = json!(serde_json::to_string(&rewound)?);
    fw.cluster_mut().insert(ledger)?;
    fw.run_until_quiet()?; // the watch delivers the ledger (snapshot only: no run)
    fw.module_run()?;
    fw.run_until_quiet()?;
    assert_eq!(children(&fw, "web").len(), 3);
    assert_eq!(ingress(&fw, "web", "web").len(), 3);
    let conditions =
        fw.cluster().get(Some("v1"), "Service", "web", "web").unwrap()["status"]["conditions"]
            .to_string();
    assert!(!conditions.contains("ChildObjectsWritten"), "{conditions}");
    assert!(!format!("{:?}", fw.metrics()).contains("d8_metallb_refused_writes"));
    assert_second_run_is_a_no_op(&mut fw)
}
