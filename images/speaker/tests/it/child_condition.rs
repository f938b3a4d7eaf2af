//! The children's `NodeCanAnnounce` condition against a mocked API server (tower-test): the
//! Kubernetes source feeds the children of this node to the writer, the data plane's
//! interface problems (sent here by hand) decide the condition, and the writer applies it
//! server-side on the status subresource — once, retried after a refusal — and removes it
//! (a JSON patch guarded by a test of the item's type) when the problem clears and on a child
//! it no longer announces.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use kube::Client;
use kube::client::Body;
use metallb_speaker::interfaces::{ClassInterfaces, InterfaceProblems};
use metallb_speaker::metrics::Metrics;
use metallb_speaker::source::Source;
use metallb_speaker::source::kubernetes::KubernetesSource;
use metallb_speaker::source::kubernetes::condition::{self, ConditionFeed, MIN_INTERVAL};
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};
use tower_test::mock::{self, SendResponse};

/// Bound of every wait for a request (virtual time: the clock is paused and advances only
/// while every task waits).
const DEADLINE: Duration = Duration::from_secs(10);

const CHILDREN: &str = "/apis/internal.network.deckhouse.io/v1alpha1/sdninternall2lbservices";
const CLASSES: &str = "/apis/network.deckhouse.io/v1alpha1/metalloadbalancerclasses";
const STATUS: &str =
    "/apis/internal.network.deckhouse.io/v1alpha1/namespaces/web/sdninternall2lbservices";
const MANAGER: &str = "metallb-speaker/front-0";

type Pending = (Request<Body>, SendResponse<Response<Body>>);

struct Api {
    children: mpsc::UnboundedReceiver<Pending>,
    classes: mpsc::UnboundedReceiver<Pending>,
    status: mpsc::UnboundedReceiver<Pending>,
    held: Vec<SendResponse<Response<Body>>>,
}

fn mock_api() -> (Client, Api) {
    let (service, mut handle) = mock::pair::<Request<Body>, Response<Body>>();
    let (children_tx, children) = mpsc::unbounded_channel();
    let (classes_tx, classes) = mpsc::unbounded_channel();
    let (status_tx, status) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some((request, send)) = handle.next_request().await {
            let path = request.uri().path().to_owned();
            let route = match path.as_str() {
                CHILDREN => &children_tx,
                CLASSES => &classes_tx,
                p if p.starts_with(STATUS) && p.ends_with("/status") => &status_tx,
                other => panic!("unexpected request to {other}"),
            };
            let _ = route.send((request, send));
        }
    });
    (Client::new(service, "default"), Api { children, classes, status, held: Vec::new() })
}

async fn next(queue: &mut mpsc::UnboundedReceiver<Pending>) -> Pending {
    tokio::time::timeout(DEADLINE, queue.recv())
        .await
        .expect("a request within the deadline")
        .expect("the router is running")
}

/// Waits (virtual time) until `done` holds: a reply is handled by the writer's task.
async fn eventually(done: impl Fn() -> bool) {
    for _ in 0..100 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("not within a second");
}

/// No request for a long while.
async fn silent(queue: &mut mpsc::UnboundedReceiver<Pending>) {
    let waited = tokio::time::timeout(MIN_INTERVAL * 6, queue.recv()).await;
    assert!(waited.is_err(), "no write expected, got {:?}", waited.map(|p| p.map(|p| line(&p.0))));
}

fn line(request: &Request<Body>) -> String {
    format!("{} {}", request.method(), request.uri().path_and_query().expect("path").as_str())
}

async fn body(request: Request<Body>) -> Value {
    let (_, body) = request.into_parts();
    serde_json::from_slice(&body.collect_bytes().await.expect("body")).expect("json")
}

fn reply(send: SendResponse<Response<Body>>, status: u16, body: &Value) {
    let body = serde_json::to_vec(body).expect("json");
    send.send_response(
        Response::builder().status(status).body(Body::from(body)).expect("response"),
    );
}

fn list(kind: &str, version: &str, items: Vec<Value>) -> Value {
    json!({"apiVersion": "v1", "kind": format!("{kind}List"),
           "metadata": {"resourceVersion": version}, "items": items})
}

fn watch_lines(send: SendResponse<Response<Body>>, events: &[Value]) {
    let body: Vec<u8> = events
        .iter()
        .flat_map(|e| serde_json::to_vec(e).expect("json").into_iter().chain([b'\n']))
        .collect();
    send.send_response(Response::builder().status(200).body(Body::from(body)).expect("response"));
}

fn child(name: &str, version: &str, ip: &str, node: &str) -> Value {
    json!({
        "apiVersion": "internal.network.deckhouse.io/v1alpha1",
        "kind": "SDNInternalL2LBService",
        "metadata": {"name": name, "namespace": "web", "resourceVersion": version,
                     "labels": {"heritage": "deckhouse", "module": "metallb"}},
        "spec": {"serviceRef": {"name": "nginx", "namespace": "web"},
                 "metalLoadBalancerClass": "front"},
        "status": {"ip": ip, "node": node, "backupNodes": ["front-1"],
                   "conditions": [{"type": "Announced", "status": "True", "reason": "NodeAssigned",
                                   "message": format!("announced by {node}"),
                                   "lastTransitionTime": "2026-12-06T00:00:00Z"}]},
    })
}

/// `object` with this speaker's condition stored, owned by its manager.
fn with_condition(mut object: Value, condition: &Value) -> Value {
    object["status"]["conditions"].as_array_mut().expect("conditions").push(condition.clone());
    object["metadata"]["managedFields"] = json!([
        {"manager": "metallb-hooks", "operation": "Update", "subresource": "status",
         "apiVersion": "internal.network.deckhouse.io/v1alpha1", "fieldsType": "FieldsV1",
         "fieldsV1": {"f:status": {"f:ip": {}, "f:node": {}}}},
        {"manager": MANAGER, "operation": "Apply", "subresource": "status",
         "apiVersion": "internal.network.deckhouse.io/v1alpha1", "fieldsType": "FieldsV1",
         "fieldsV1": {"f:status": {"f:conditions": {
             "k:{\"type\":\"NodeCanAnnounce\"}": {".": {}, "f:type": {}, "f:status": {}}}}}},
    ]);
    object
}

fn missing(iface: &str) -> InterfaceProblems {
    InterfaceProblems::from([(
        "front".to_owned(),
        ClassInterfaces {
            missing: BTreeSet::from([iface.to_owned()]),
            down: BTreeSet::new(),
            usable: BTreeSet::new(),
        },
    )])
}

#[tokio::test(start_paused = true)]
async fn the_condition_is_applied_once_retried_after_a_refusal_and_released() {
    let (client, mut api) = mock_api();
    let metrics = Arc::new(Metrics::new());
    let (children_tx, children) = watch::channel(None);
    let (problems_tx, problems) = watch::channel(None);
    let source = KubernetesSource::new(client.clone(), "d8-metallb", None)
        .with_conditions(ConditionFeed { node: "front-0".into(), updates: children_tx });
    let (updates, _state) = watch::channel(None);
    let source_task = tokio::spawn(source.run(updates, metrics.clone()));
    let writer = tokio::spawn(condition::write(
        client,
        "front-0".into(),
        children,
        problems,
        metrics.clone(),
    ));
    // The data plane's first scan: the class names eth9, which this node lacks.
    problems_tx.send_replace(Some(missing("eth9")));

    let (_, send) = next(&mut api.classes).await;
    reply(
        send,
        200,
        &list(
            "MetalLoadBalancerClass",
            "5",
            vec![json!({
                "apiVersion": "network.deckhouse.io/v1alpha1", "kind": "MetalLoadBalancerClass",
                "metadata": {"name": "front", "resourceVersion": "5"},
                "spec": {"type": "L2", "addressPool": ["192.0.2.10-192.0.2.20"],
                         "l2": {"interfaces": ["eth9"]}},
            })],
        ),
    );
    // nginx-front-0 is this node's; nginx-front-1 moved to front-1 while this speaker was
    // down and still carries the condition this node's manager wrote; nginx-front-2 is
    // another node's business.
    let stale = json!({"type": "NodeCanAnnounce", "status": "False", "reason": "InterfaceMissing",
                       "message": "node front-0 lacks interface eth9 named by class front: \
                                   192.0.2.11 is not answered on this node",
                       "lastTransitionTime": "2026-12-06T00:00:00Z"});
    let (_, send) = next(&mut api.children).await;
    reply(
        send,
        200,
        &list(
            "SDNInternalL2LBService",
            "100",
            vec![
                child("nginx-front-0", "90", "192.0.2.10", "front-0"),
                with_condition(child("nginx-front-1", "91", "192.0.2.11", "front-1"), &stale),
                child("nginx-front-2", "92", "192.0.2.12", "front-2"),
            ],
        ),
    );

    let want_line = |name: &str| {
        format!("PATCH {STATUS}/{name}/status?&force=true&fieldManager=metallb-speaker%2Ffront-0")
    };
    let removal_line = |name: &str| {
        format!("PATCH {STATUS}/{name}/status?&fieldManager=metallb-speaker%2Ffront-0")
    };
    // The condition is second in every list here, after the hooks' `Announced`.
    let removal = || {
        json!([{"op": "test", "path": "/status/conditions/1/type", "value": "NodeCanAnnounce"},
               {"op": "remove", "path": "/status/conditions/1"}])
    };
    let (request, send) = next(&mut api.status).await;
    assert_eq!(line(&request), want_line("nginx-front-0"));
    assert_eq!(
        request.headers().get("content-type").map(|v| v.to_str().expect("ascii")),
        Some("application/apply-patch+yaml")
    );
    let mut written = body(request).await;
    let since = written["status"]["conditions"][0]["lastTransitionTime"].take();
    assert!(since.as_str().is_some_and(|t| t.ends_with('Z') && t.len() == 20), "{since}");
    let condition = json!({"type": "NodeCanAnnounce", "status": "False",
                           "reason": "InterfaceMissing",
                           "message": "node front-0 lacks interface eth9 named by class front: \
                                       192.0.2.10 is not answered on this node"});
    assert_eq!(
        written,
        json!({"apiVersion": "internal.network.deckhouse.io/v1alpha1",
               "kind": "SDNInternalL2LBService",
               "metadata": {"name": "nginx-front-0", "namespace": "web"},
               "status": {"conditions": [
                   {"lastTransitionTime": null, "message": condition["message"],
                    "reason": "InterfaceMissing", "status": "False", "type": "NodeCanAnnounce"}]}})
    );
    // Refused (an admission webhook, RBAC): counted, never fatal; the next write goes on.
    reply(
        send,
        403,
        &json!({"apiVersion": "v1", "kind": "Status", "metadata": {}, "status": "Failure",
                "message": "forbidden", "reason": "Forbidden", "code": 403}),
    );
    let (request, send) = next(&mut api.status).await;
    assert_eq!(line(&request), removal_line("nginx-front-1"));
    assert_eq!(
        request.headers().get("content-type").map(|v| v.to_str().expect("ascii")),
        Some("application/json-patch+json")
    );
    assert_eq!(body(request).await, removal(), "removed, guarded by its type");
    reply(send, 200, &child("nginx-front-1", "101", "192.0.2.11", "front-1"));
    assert_eq!(metrics.condition_errors.get(), 1);

    // The watch shows the release.
    let (request, send) = next(&mut api.classes).await;
    assert!(line(&request).contains("watch=true"));
    api.held.push(send);
    let (request, send) = next(&mut api.children).await;
    assert!(line(&request).contains("watch=true"));
    watch_lines(
        send,
        &[json!({"type": "MODIFIED",
                 "object": child("nginx-front-1", "101", "192.0.2.11", "front-1")})],
    );

    // The refused write is retried after the interval.
    let (request, send) = next(&mut api.status).await;
    assert_eq!(line(&request), want_line("nginx-front-0"));
    let mut stored = condition.clone();
    stored["lastTransitionTime"] = since;
    let front_0 = with_condition(child("nginx-front-0", "102", "192.0.2.10", "front-0"), &stored);
    reply(send, 200, &front_0);
    eventually(|| metrics.condition_writes.get() == 2).await;
    assert_eq!(metrics.cannot_announce.get(), 1);

    // The watch shows it: nothing more to write, however long.
    let (request, send) = next(&mut api.children).await;
    assert!(line(&request).contains("watch=true"));
    watch_lines(send, &[json!({"type": "MODIFIED", "object": front_0})]);
    silent(&mut api.status).await;

    // The interface appears: the condition is removed, once.
    problems_tx.send_replace(Some(InterfaceProblems::new()));
    let (request, send) = next(&mut api.status).await;
    assert_eq!(line(&request), removal_line("nginx-front-0"));
    assert_eq!(body(request).await, removal());
    reply(send, 200, &child("nginx-front-0", "103", "192.0.2.10", "front-0"));
    assert_eq!(metrics.cannot_announce.get(), 0);
    assert!(!writer.is_finished() && !source_task.is_finished());
    writer.abort();
    source_task.abort();
}
