use addon::{HookInput, ObjectRef};
use serde_json::json;

use super::*;

fn output() -> KubeOutput {
    HookInput::new(module::NAME, Vec::new(), json!({}), json!({})).output().kubernetes
}

fn child(ip: &str) -> KubeOperation {
    let object = json!({"apiVersion": "v1", "kind": "Child",
        "metadata": {"namespace": "web", "name": "web-0"}, "spec": {"ip": ip}});
    KubeOperation::CreateOrUpdate { object: RawJson::new(&object).unwrap() }
}

fn child_status() -> KubeOperation {
    let target = ObjectRef::namespaced("v1", "Child", "web", "web-0");
    KubeOperation::merge_patch(target, RawJson::new(&json!({"status": {"node": "a"}})).unwrap())
        .status()
}

fn service_status() -> KubeOperation {
    let target = ObjectRef::namespaced("v1", "Service", "web", "web");
    KubeOperation::merge_patch(target, RawJson::new(&json!({"status": {}})).unwrap()).status()
}

/// One run: the stored ledger in, the emitted operations and the new ledger out.
fn run(
    ledger: Option<&Value>,
    now: i64,
    ops: Vec<KubeOperation>,
) -> (Vec<Admission>, Vec<String>, Option<Value>, Vec<Refused>) {
    let mut out = output();
    let mut guard = WriteGuard::new(&mut out, ledger, now);
    let admissions = ops.into_iter().map(|op| guard.push(op).unwrap()).collect();
    let refused = guard.finish().unwrap();
    let mut emitted = Vec::new();
    let mut stored = None;
    for op in out.held() {
        let (target, _) = Target::of(op).unwrap();
        if target.name == LEDGER_NAME {
            let v = serde_json::to_value(op).unwrap();
            stored = Some(json!({"writes": v["object"]["data"]["writes"].clone()}));
        } else {
            emitted.push(target.key());
        }
    }
    (admissions, emitted, stored, refused)
}

/// The same write refused run after run (the framework retries the failed run): after
/// `MAX_ATTEMPTS` runs it is held back, with its object's status patch, and reported; the other
/// writes of the run go on.
#[test]
fn a_write_emitted_max_attempts_times_is_held_back() {
    let mut ledger = None;
    for attempt in 1..=MAX_ATTEMPTS {
        let (adm, emitted, stored, refused) = run(
            ledger.as_ref(),
            100 + i64::from(attempt),
            vec![child("192.0.2.1"), child_status()],
        );
        assert_eq!(adm, [Admission::Written, Admission::Written], "attempt {attempt}");
        assert_eq!(emitted.len(), 2);
        assert!(refused.is_empty());
        ledger = stored;
    }
    let (adm, emitted, stored, refused) =
        run(ledger.as_ref(), 110, vec![child("192.0.2.1"), child_status(), service_status()]);
    assert_eq!(adm, [Admission::HeldBack, Admission::HeldBack, Admission::Written]);
    assert_eq!(emitted, ["MergePatch Service web/web status"]);
    assert_eq!(
        refused,
        [Refused {
            kind: "Child".into(),
            namespace: "web".into(),
            name: "web-0".into(),
            write: "CreateOrUpdate".into(),
            attempts: MAX_ATTEMPTS,
        }]
    );
    // Held back again while the retry time has not come, without writing the ledger again.
    let (adm, emitted, again, refused) = run(stored.as_ref(), 200, vec![child("192.0.2.1")]);
    assert_eq!((adm, emitted.len(), again, refused.len()), (vec![Admission::HeldBack], 0, None, 1));
    // Then tried once more.
    let (adm, ..) = run(stored.as_ref(), 103 + RETRY_AFTER_SECONDS, vec![child("192.0.2.1")]);
    assert_eq!(adm, [Admission::Written]);
}

/// A write whose content changed is a new write: its count starts over.
#[test]
fn changed_content_starts_over() {
    let mut ledger = None;
    for _ in 0..MAX_ATTEMPTS {
        ledger = run(ledger.as_ref(), 1, vec![child("192.0.2.1")]).2;
    }
    let (adm, ..) = run(ledger.as_ref(), 2, vec![child("192.0.2.2")]);
    assert_eq!(adm, [Admission::Written]);
}

/// A run that writes nothing leaves the ledger alone, so a converged cluster stays quiet; a
/// ledger that does not parse counts nothing.
#[test]
fn quiet_runs_write_no_ledger_and_garbage_counts_nothing() {
    let ledger = run(None, 1, vec![child("192.0.2.1")]).2;
    assert!(ledger.is_some());
    let (_, emitted, stored, _) = run(ledger.as_ref(), 2, Vec::new());
    assert_eq!((emitted.len(), stored), (0, None));
    for garbage in [json!({"writes": "not json"}), json!({"writes": 7}), json!(null)] {
        let mut ledger = Some(garbage);
        for _ in 0..MAX_ATTEMPTS {
            let (adm, _, stored, _) = run(ledger.as_ref(), 1, vec![child("192.0.2.1")]);
            assert_eq!(adm, [Admission::Written]);
            ledger = stored;
        }
    }
}

/// The ledger never grows past its cap, however many writes a run emits.
#[test]
fn the_ledger_is_capped() {
    let ops: Vec<_> = (0..LEDGER_CAP + 10)
        .map(|i| {
            let target = ObjectRef::namespaced("v1", "Service", "web", format!("s{i}"));
            KubeOperation::merge_patch(target, RawJson::new(&json!({"status": {}})).unwrap())
        })
        .collect();
    let (_, emitted, stored, _) = run(None, 1, ops);
    assert_eq!(emitted.len(), LEDGER_CAP + 10);
    let entries: Vec<Value> =
        serde_json::from_str(stored.unwrap()["writes"].as_str().unwrap()).unwrap();
    assert_eq!(entries.len(), LEDGER_CAP);
}

#[test]
fn fnv1a_is_the_published_function() {
    // Test vectors of the FNV reference (draft-eastlake-fnv).
    assert_eq!(fnv1a(b"", FNV_OFFSET), 0xcbf2_9ce4_8422_2325);
    assert_eq!(fnv1a(b"a", FNV_OFFSET), 0xaf63_dc4c_8601_ec8c);
    assert_eq!(fnv1a(b"foobar", FNV_OFFSET), 0x8594_4171_f739_67e8);
    assert_eq!(fnv1a(b"bar", fnv1a(b"foo", FNV_OFFSET)), fnv1a(b"foobar", FNV_OFFSET));
}

/// Every kind of operation names its target, and its content changes its hash.
#[test]
fn targets_and_hashes_of_every_operation() {
    let t = || ObjectRef::namespaced("v1", "Service", "web", "web");
    let ops = [
        (child("192.0.2.1"), "CreateOrUpdate Child web/web-0 "),
        (KubeOperation::DeleteInBackground(t()), "DeleteInBackground Service web/web "),
        (service_status(), "MergePatch Service web/web status"),
        (KubeOperation::json_patch(t(), vec![]).status(), "JSONPatch Service web/web status"),
        (KubeOperation::jq_patch(t(), ".a = 1"), "JQPatch Service web/web "),
    ];
    for (op, key) in &ops {
        assert_eq!(Target::of(op).unwrap().0.key(), *key);
    }
    let hash = |op: &KubeOperation| Target::of(op).unwrap().1;
    assert_ne!(hash(&child("192.0.2.1")), hash(&child("192.0.2.2")));
    assert_eq!(hash(&child("192.0.2.1")), hash(&child("192.0.2.1")));
}
