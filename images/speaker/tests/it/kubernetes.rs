//! The Kubernetes source against a mocked API server (tower-test): the exact requests of the
//! three watchers, the first publish only after complete lists, peers from the speaker pods,
//! and a watch expiry (410 Gone) that relists while the last view stays published.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use kube::Client;
use kube::client::Body;
use metallb_speaker::metrics::{KindLabel, Metrics, ReasonLabel};
use metallb_speaker::source::kubernetes::{KubernetesSource, PeerFeed, RetryBackoff};
use metallb_speaker::source::{DesiredState, Source};
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};
use tower_test::mock::{self, SendResponse};

/// Bound of every wait: the events take microseconds; the watcher's first backoff after an
/// error is under a second. The bound only turns a hang into a failure.
const DEADLINE: Duration = Duration::from_secs(10);

const CHILDREN: &str = "/apis/internal.network.deckhouse.io/v1alpha1/sdninternall2lbservices";
const CLASSES: &str = "/apis/network.deckhouse.io/v1alpha1/metalloadbalancerclasses";
const PODS: &str = "/api/v1/namespaces/d8-metallb/pods";

type Pending = (Request<Body>, SendResponse<Response<Body>>);

/// Requests routed by resource, so each kind's sequence is checked on its own (the three
/// watchers run concurrently; their interleaving is not part of the contract).
struct Api {
    children: mpsc::UnboundedReceiver<Pending>,
    classes: mpsc::UnboundedReceiver<Pending>,
    pods: mpsc::UnboundedReceiver<Pending>,
    /// Responses never sent: open watches that simply have no news.
    held: Vec<SendResponse<Response<Body>>>,
}

fn mock_api() -> (Client, Api) {
    let (service, mut handle) = mock::pair::<Request<Body>, Response<Body>>();
    let (children_tx, children) = mpsc::unbounded_channel();
    let (classes_tx, classes) = mpsc::unbounded_channel();
    let (pods_tx, pods) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some((request, send)) = handle.next_request().await {
            let path = request.uri().path().to_owned();
            let route = match path.as_str() {
                CHILDREN => &children_tx,
                CLASSES => &classes_tx,
                PODS => &pods_tx,
                other => panic!("unexpected request to {other}"),
            };
            let _ = route.send((request, send));
        }
    });
    (Client::new(service, "default"), Api { children, classes, pods, held: Vec::new() })
}

/// The next request of one kind as `METHOD path?query`, with its responder.
async fn next(
    queue: &mut mpsc::UnboundedReceiver<Pending>,
) -> (String, SendResponse<Response<Body>>) {
    let (request, send) = tokio::time::timeout(DEADLINE, queue.recv())
        .await
        .expect("a request within the deadline")
        .expect("the router is running");
    let uri = request.uri();
    let line = format!("{} {}", request.method(), uri.path_and_query().expect("path").as_str());
    (line, send)
}

fn reply(send: SendResponse<Response<Body>>, body: Vec<u8>) {
    send.send_response(Response::builder().status(200).body(Body::from(body)).expect("response"));
}

fn list(kind: &str, version: &str, items: Vec<Value>) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "apiVersion": "v1", "kind": format!("{kind}List"),
        "metadata": {"resourceVersion": version}, "items": items,
    }))
    .expect("json")
}

fn watch_lines(events: &[Value]) -> Vec<u8> {
    events
        .iter()
        .flat_map(|e| serde_json::to_vec(e).expect("json").into_iter().chain([b'\n']))
        .collect()
}

fn child(name: &str, version: &str, placement: Option<(&str, &str, &[&str])>) -> Value {
    let mut object = json!({
        "apiVersion": "internal.network.deckhouse.io/v1alpha1",
        "kind": "SDNInternalL2LBService",
        "metadata": {"name": name, "namespace": "web", "resourceVersion": version,
                     "labels": {"heritage": "deckhouse", "module": "metallb",
                                "parent-service": "nginx"}},
        "spec": {
            "serviceRef": {"name": "nginx", "namespace": "web"},
            "metalLoadBalancerClass": "front",
            "ports": [{"port": 80, "protocol": "TCP"}],
            "selector": {"app": "nginx"},
        },
    });
    if let Some((ip, node, backups)) = placement {
        object["status"] = json!({"ip": ip, "node": node, "backupNodes": backups});
    }
    object
}

fn pod(name: &str, host_ip: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "d8-metallb", "resourceVersion": "7",
                     "labels": {"app": "l2lb-speaker"}},
        "spec": {"containers": [{"name": "speaker", "image": "speaker"}], "hostNetwork": true},
        "status": {"hostIP": host_ip, "podIP": host_ip, "phase": "Running"},
    })
}

/// The published addresses as `ip@node>backups`.
fn addresses(state: &DesiredState) -> Vec<String> {
    state.addresses.iter().map(|a| format!("{}@{}>{}", a.ip, a.node, a.backups.join(","))).collect()
}

async fn changed<T: Clone>(receiver: &mut watch::Receiver<T>) -> T {
    tokio::time::timeout(DEADLINE, receiver.changed())
        .await
        .expect("a change within the deadline")
        .expect("the source is running");
    receiver.borrow_and_update().clone()
}

#[tokio::test]
async fn lists_then_watches_and_relists_after_an_expired_watch_keeping_the_last_view() {
    let (client, mut api) = mock_api();
    let metrics = Arc::new(Metrics::new());
    let (peer_tx, mut peers) = watch::channel(Vec::<SocketAddr>::new());
    let source = KubernetesSource::new(
        client,
        "d8-metallb",
        Some(PeerFeed { port: 4226, updates: peer_tx }),
    );
    let (updates, mut state) = watch::channel(None);
    let task = tokio::spawn(source.run(updates, metrics.clone()));

    // Initial lists: paged (limit 500), then a watch from the list's resource version.
    let (line, send) = next(&mut api.classes).await;
    assert_eq!(line, format!("GET {CLASSES}?&limit=500"));
    reply(
        send,
        list(
            "MetalLoadBalancerClass",
            "5",
            vec![json!({
                "apiVersion": "network.deckhouse.io/v1alpha1", "kind": "MetalLoadBalancerClass",
                "metadata": {"name": "front", "resourceVersion": "5"},
                "spec": {"type": "L2", "addressPool": ["192.0.2.10-192.0.2.20"],
                         "l2": {"interfaces": ["eth1"]}},
            })],
        ),
    );
    let (line, send) = next(&mut api.pods).await;
    assert_eq!(line, format!("GET {PODS}?&labelSelector=app%3Dl2lb-speaker&limit=500"));
    reply(
        send,
        list("Pod", "7", vec![pod("speaker-a", "198.51.100.1"), pod("speaker-b", "198.51.100.2")]),
    );
    assert_eq!(
        changed(&mut peers).await,
        ["198.51.100.1:4226".parse().expect("addr"), "198.51.100.2:4226".parse().expect("addr")]
    );
    assert!(state.borrow().is_none(), "nothing is published before the children are listed");

    let (line, send) = next(&mut api.children).await;
    assert_eq!(line, format!("GET {CHILDREN}?&limit=500"));
    // Written by someone who may create children, not by the hooks: it names the gateway.
    let mut forged = child("gateway", "93", Some(("192.0.2.1", "a", &[])));
    forged["metadata"]["labels"] = json!({});
    reply(
        send,
        list(
            "SDNInternalL2LBService",
            "100",
            vec![
                child("nginx-front-0", "90", Some(("192.0.2.10", "a", &["b", "c"]))),
                child("nginx-front-1", "91", Some(("192.0.2.11", "b", &["a"]))),
                child("nginx-front-2", "92", None),
                forged,
            ],
        ),
    );
    let first = changed(&mut state).await.expect("published after both lists");
    assert_eq!(
        addresses(&first),
        ["192.0.2.10@a>b,c", "192.0.2.11@b>a"],
        "the forged one left out"
    );
    let ignored = metrics.ignored_children.get_or_create(&ReasonLabel { reason: "not_labelled" });
    assert_eq!(ignored.get(), 1);
    assert_eq!(first.classes["front"].interfaces, ["eth1"]);

    for queue in [&mut api.classes, &mut api.pods] {
        let (line, send) = next(queue).await;
        assert!(line.contains("watch=true"), "{line}");
        api.held.push(send);
    }
    let (line, send) = next(&mut api.children).await;
    assert_eq!(
        line,
        format!(
            "GET {CHILDREN}?&watch=true&timeoutSeconds=290&allowWatchBookmarks=true&resourceVersion=100"
        )
    );
    // The hooks place the third IP; then the watch expires.
    reply(
        send,
        watch_lines(&[
            json!({"type": "MODIFIED",
                   "object": child("nginx-front-2", "101", Some(("192.0.2.12", "c", &["a"])))}),
            json!({"type": "ERROR", "object": {
                "apiVersion": "v1", "kind": "Status", "metadata": {}, "status": "Failure",
                "message": "too old resource version: 100 (150)", "reason": "Expired",
                "code": 410}}),
        ]),
    );
    let placed = changed(&mut state).await.expect("state");
    assert_eq!(addresses(&placed), ["192.0.2.10@a>b,c", "192.0.2.11@b>a", "192.0.2.12@c>a"]);

    // The relist: until it completes, the last view stays published and the error is counted.
    let (line, send) = next(&mut api.children).await;
    assert_eq!(line, format!("GET {CHILDREN}?&limit=500"));
    let errors = metrics.watch_errors.get_or_create(&KindLabel { kind: "SDNInternalL2LBService" });
    assert_eq!(errors.get(), 1);
    assert_eq!(addresses(state.borrow().as_ref().expect("state")), addresses(&placed));
    // nginx-front-1 was deleted while the watch was down: the relist drops it.
    reply(
        send,
        list(
            "SDNInternalL2LBService",
            "200",
            vec![
                child("nginx-front-0", "90", Some(("192.0.2.10", "a", &["b", "c"]))),
                child("nginx-front-2", "101", Some(("192.0.2.12", "c", &["a"]))),
            ],
        ),
    );
    let relisted = changed(&mut state).await.expect("state");
    assert_eq!(addresses(&relisted), ["192.0.2.10@a>b,c", "192.0.2.12@c>a"]);
    let (line, send) = next(&mut api.children).await;
    assert!(line.ends_with("&resourceVersion=200"), "{line}");
    api.held.push(send);

    assert!(!task.is_finished(), "the source keeps running through watch errors");
    task.abort();
}

#[tokio::test]
async fn a_failing_list_is_retried_and_nothing_is_published_meanwhile() {
    let (client, mut api) = mock_api();
    let metrics = Arc::new(Metrics::new());
    let source = KubernetesSource::new(client, "d8-metallb", None);
    let (updates, mut state) = watch::channel(None);
    let task = tokio::spawn(source.run(updates, metrics.clone()));

    let (_, send) = next(&mut api.classes).await;
    reply(send, list("MetalLoadBalancerClass", "5", Vec::new()));
    let (line, send) = next(&mut api.children).await;
    assert_eq!(line, format!("GET {CHILDREN}?&limit=500"));
    send.send_response(
        Response::builder()
            .status(503)
            .body(Body::from(
                serde_json::to_vec(&json!({"apiVersion": "v1", "kind": "Status", "metadata": {},
                    "status": "Failure", "message": "etcd is unavailable", "code": 503}))
                .expect("json"),
            ))
            .expect("response"),
    );
    let (line, send) = next(&mut api.children).await;
    assert_eq!(line, format!("GET {CHILDREN}?&limit=500"), "the list is retried");
    assert!(state.borrow().is_none(), "no state before a complete list");
    assert_eq!(
        metrics.watch_errors.get_or_create(&KindLabel { kind: "SDNInternalL2LBService" }).get(),
        1
    );
    reply(send, list("SDNInternalL2LBService", "3", Vec::new()));
    let empty = changed(&mut state).await.expect("state");
    assert!(empty.addresses.is_empty());
    assert!(api.pods.try_recv().is_err(), "no pod watch without gossip");
    task.abort();
}

#[tokio::test(start_paused = true)]
async fn after_a_long_outage_the_watch_follows_within_seconds_of_the_return() {
    let (client, mut api) = mock_api();
    let metrics = Arc::new(Metrics::new());
    let source = KubernetesSource::new(client, "d8-metallb", None);
    let (updates, mut state) = watch::channel(None);
    let task = tokio::spawn(source.run(updates, metrics.clone()));
    let (_, send) = next(&mut api.classes).await;
    reply(send, list("MetalLoadBalancerClass", "5", Vec::new()));

    // The API server is down for a long while: every list fails. Virtual time (paused), so
    // the delays below are the watcher's own, exactly.
    let unavailable = |send: SendResponse<Response<Body>>| {
        send.send_response(
            Response::builder()
                .status(503)
                .body(Body::from(
                    serde_json::to_vec(&json!({"apiVersion": "v1", "kind": "Status",
                        "metadata": {}, "status": "Failure", "message": "unavailable",
                        "code": 503}))
                    .expect("json"),
                ))
                .expect("response"),
        );
    };
    let mut failed_at = tokio::time::Instant::now();
    for _ in 0..12 {
        let (line, send) = next(&mut api.children).await;
        assert_eq!(line, format!("GET {CHILDREN}?&limit=500"));
        unavailable(send);
        failed_at = tokio::time::Instant::now();
    }
    // Back: the next attempt comes within the cap, not after kube's 30 s.
    let (line, send) = next(&mut api.children).await;
    let waited = failed_at.elapsed();
    assert!(waited <= RetryBackoff::MAX, "retried after {waited:?}");
    assert_eq!(line, format!("GET {CHILDREN}?&limit=500"));
    reply(
        send,
        list(
            "SDNInternalL2LBService",
            "9",
            vec![child("nginx-front-0", "8", Some(("192.0.2.10", "a", &[])))],
        ),
    );
    let first = changed(&mut state).await.expect("state");
    assert!(first.addresses.is_empty(), "the class list is empty: the child is not admitted");
    assert_eq!(
        metrics.watch_errors.get_or_create(&KindLabel { kind: "SDNInternalL2LBService" }).get(),
        12
    );
    task.abort();
}
