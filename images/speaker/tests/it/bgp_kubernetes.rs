//! BGP mode's Kubernetes source and peer status writer against a mocked API server
//! (tower-test): the exact list/watch requests of the four watchers, the first publish only
//! after complete lists, the node's desired state following a watch event and a relist after
//! `410 Gone`, and the server-side apply of the node's session entry (method, URI with the
//! field manager, body), including a refused write that is counted and retried.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::{Request, Response};
use ipnet::IpNet;
use kube::Client;
use kube::client::Body;
use metallb_speaker::bgp::kubernetes::Watch;
use metallb_speaker::bgp::reduce::{Ignored, Reduced};
use metallb_speaker::bgp::status::{self, Session, Sessions};
use metallb_speaker::metrics::{KindLabel, Metrics};
use metallb_speaker::source::kubernetes::RetryBackoff;
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};
use tower_test::mock::{self, SendResponse};

/// Bound of every wait; the events take microseconds. It only turns a hang into a failure.
const DEADLINE: Duration = Duration::from_secs(10);

const ANNOUNCEMENTS: &str =
    "/apis/internal.network.deckhouse.io/v1alpha1/sdninternalbgpannouncements";
const PEERS: &str = "/apis/network.deckhouse.io/v1alpha1/metalloadbalancerbgppeers";
const POOLS: &str = "/apis/network.deckhouse.io/v1alpha1/metalloadbalancerpools";
const SECRETS: &str = "/api/v1/namespaces/d8-metallb/secrets";

type Pending = (Request<Body>, SendResponse<Response<Body>>);

/// Requests routed by path, so each kind's sequence is checked on its own.
struct Api {
    announcements: mpsc::UnboundedReceiver<Pending>,
    peers: mpsc::UnboundedReceiver<Pending>,
    pools: mpsc::UnboundedReceiver<Pending>,
    secrets: mpsc::UnboundedReceiver<Pending>,
    status: mpsc::UnboundedReceiver<Pending>,
    held: Vec<SendResponse<Response<Body>>>,
}

fn mock_api() -> (Client, Api) {
    let (service, mut handle) = mock::pair::<Request<Body>, Response<Body>>();
    let channels: Vec<_> = (0..5).map(|_| mpsc::unbounded_channel()).collect();
    let senders: Vec<_> = channels.iter().map(|(tx, _)| tx.clone()).collect();
    tokio::spawn(async move {
        while let Some((request, send)) = handle.next_request().await {
            let path = request.uri().path().to_owned();
            let index = match path.as_str() {
                ANNOUNCEMENTS => 0,
                PEERS => 1,
                POOLS => 2,
                SECRETS => 3,
                p if p.starts_with(PEERS) && p.ends_with("/status") => 4,
                other => panic!("unexpected request to {other}"),
            };
            let _ = senders[index].send((request, send));
        }
    });
    let mut receivers = channels.into_iter().map(|(_, rx)| rx);
    let mut next = || receivers.next().expect("receiver");
    let api = Api {
        announcements: next(),
        peers: next(),
        pools: next(),
        secrets: next(),
        status: next(),
        held: Vec::new(),
    };
    (Client::new(service, "default"), api)
}

async fn next(
    queue: &mut mpsc::UnboundedReceiver<Pending>,
) -> (Request<Body>, SendResponse<Response<Body>>) {
    tokio::time::timeout(DEADLINE, queue.recv())
        .await
        .expect("a request within the deadline")
        .expect("the router is running")
}

fn line(request: &Request<Body>) -> String {
    format!("{} {}", request.method(), request.uri().path_and_query().expect("path").as_str())
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

fn announcement(name: &str, version: &str, ip: &str, nodes: &[&str]) -> Value {
    json!({
        "apiVersion": "internal.network.deckhouse.io/v1alpha1", "kind": "SDNInternalBGPAnnouncement",
        "metadata": {"name": name, "namespace": "web", "resourceVersion": version,
                     "labels": {"heritage": "deckhouse", "module": "metallb"}},
        "spec": {"serviceRef": {"name": "nginx", "namespace": "web"}, "pool": "public", "ip": ip,
                 "routes": [{"configuration": "rack-a", "advertisement": 0,
                             "prefix": format!("{ip}/32"), "communities": ["64512:100"],
                             "peers": ["tor-a"], "nodes": nodes}]},
    })
}

fn prefixes(reduced: &Reduced) -> Vec<String> {
    reduced.desired.routes.keys().map(IpNet::to_string).collect()
}

async fn changed(receiver: &mut watch::Receiver<Option<Arc<Reduced>>>) -> Arc<Reduced> {
    tokio::time::timeout(DEADLINE, receiver.changed())
        .await
        .expect("a change within the deadline")
        .expect("the source is running");
    receiver.borrow_and_update().clone().expect("a state")
}

#[tokio::test]
async fn the_desired_state_follows_the_objects_through_a_watch_and_a_relist() {
    let (client, mut api) = mock_api();
    let metrics = Arc::new(Metrics::new());
    let (own_entries, mut own) = watch::channel(BTreeSet::new());
    let source = Watch {
        client,
        node: "node-1".to_owned(),
        namespace: "d8-metallb".to_owned(),
        own_entries,
    };
    let (feed, mut state) = watch::channel(None);
    let task = tokio::spawn(source.follow(feed, metrics.clone()));

    let (request, send) = next(&mut api.peers).await;
    assert_eq!(line(&request), format!("GET {PEERS}?&limit=500"));
    reply(
        send,
        200,
        &list(
            "MetalLoadBalancerBGPPeer",
            "5",
            vec![json!({
                "apiVersion": "network.deckhouse.io/v1alpha1", "kind": "MetalLoadBalancerBGPPeer",
                "metadata": {"name": "tor-a", "resourceVersion": "5"},
                "spec": {"peerAddress": "192.0.2.1", "peerASN": 64500, "myASN": 64501,
                         "passwordSecretRef": {"namespace": "net", "name": "tor"},
                         "sourceAddresses": [{"nodeName": "node-1", "address": "192.0.2.11"}]},
                "status": {"sessions": [{"node": "node-2", "state": "Established"},
                                        {"node": "node-1", "state": "Active"}]},
            })],
        ),
    );
    let (request, send) = next(&mut api.pools).await;
    assert_eq!(line(&request), format!("GET {POOLS}?&limit=500"));
    reply(
        send,
        200,
        &list(
            "MetalLoadBalancerPool",
            "6",
            vec![json!({
                "apiVersion": "network.deckhouse.io/v1alpha1", "kind": "MetalLoadBalancerPool",
                "metadata": {"name": "public", "resourceVersion": "6"},
                "spec": {"addresses": ["203.0.113.0/24"]},
            })],
        ),
    );
    let (request, send) = next(&mut api.secrets).await;
    assert_eq!(
        line(&request),
        format!(
            "GET {SECRETS}?&labelSelector=network.deckhouse.io%2Fmetallb-bgp-password-copy%3Dtrue&limit=500"
        )
    );
    reply(
        send,
        200,
        &list(
            "Secret",
            "7",
            vec![json!({
                "apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": "bgp-pwd-net-tor", "namespace": "d8-metallb",
                             "resourceVersion": "7"},
                "data": {"password": "czNjcmV0"},
            })],
        ),
    );
    assert!(state.borrow().is_none(), "nothing is published before the announcements are listed");

    let (request, send) = next(&mut api.announcements).await;
    assert_eq!(
        line(&request),
        format!("GET {ANNOUNCEMENTS}?&labelSelector=module%3Dmetallb&limit=500")
    );
    let mut broken = announcement("broken-bgp-0", "12", "203.0.113.12", &["node-1"]);
    broken["spec"]["routes"] = json!("not a list");
    reply(
        send,
        200,
        &list(
            "SDNInternalBGPAnnouncement",
            "100",
            vec![
                announcement("nginx-bgp-0", "10", "203.0.113.10", &["node-1", "node-2"]),
                announcement("web-bgp-0", "11", "203.0.113.11", &["node-2"]),
                broken,
            ],
        ),
    );
    let first = changed(&mut state).await;
    assert_eq!(prefixes(&first), ["203.0.113.10/32"], "node-2's IP is not ours");
    let tor = &first.desired.peers["tor-a"];
    assert_eq!(tor.password.as_deref(), Some("s3cret"));
    assert_eq!(tor.source_address, Some("192.0.2.11".parse().expect("ip")));
    assert_eq!(first.ignored.get(&Ignored::Malformed), Some(&1), "the broken one is counted");
    assert_eq!(*own.borrow_and_update(), BTreeSet::from(["tor-a".to_owned()]), "own entry seen");

    for queue in [&mut api.peers, &mut api.pools, &mut api.secrets] {
        let (request, send) = next(queue).await;
        assert!(line(&request).contains("watch=true"), "{}", line(&request));
        api.held.push(send);
    }
    let (request, send) = next(&mut api.announcements).await;
    assert_eq!(
        line(&request),
        format!(
            "GET {ANNOUNCEMENTS}?&watch=true&timeoutSeconds=290&labelSelector=module%3Dmetallb&allowWatchBookmarks=true&resourceVersion=100"
        )
    );
    // The hooks add node-1 to the second IP; then the watch expires.
    watch_lines(
        send,
        &[
            json!({"type": "MODIFIED",
                   "object": announcement("web-bgp-0", "101", "203.0.113.11", &["node-1", "node-2"])}),
            json!({"type": "ERROR", "object": {
                "apiVersion": "v1", "kind": "Status", "metadata": {}, "status": "Failure",
                "message": "too old resource version: 100 (150)", "reason": "Expired",
                "code": 410}}),
        ],
    );
    let second = changed(&mut state).await;
    assert_eq!(prefixes(&second), ["203.0.113.10/32", "203.0.113.11/32"]);

    // The relist: until it completes the last state stays; the error is counted.
    let (request, send) = next(&mut api.announcements).await;
    assert_eq!(
        line(&request),
        format!("GET {ANNOUNCEMENTS}?&labelSelector=module%3Dmetallb&limit=500")
    );
    let errors =
        metrics.watch_errors.get_or_create(&KindLabel { kind: "SDNInternalBGPAnnouncement" });
    assert_eq!(errors.get(), 1);
    assert_eq!(prefixes(state.borrow().as_ref().expect("state")), prefixes(&second));
    // nginx-bgp-0 was deleted meanwhile: the relist withdraws it.
    reply(
        send,
        200,
        &list(
            "SDNInternalBGPAnnouncement",
            "200",
            vec![announcement("web-bgp-0", "101", "203.0.113.11", &["node-1", "node-2"])],
        ),
    );
    let relisted = changed(&mut state).await;
    assert_eq!(prefixes(&relisted), ["203.0.113.11/32"]);
    assert_eq!(relisted.ignored.get(&Ignored::Malformed), None);
    let (request, send) = next(&mut api.announcements).await;
    assert!(line(&request).ends_with("&resourceVersion=200"), "{}", line(&request));
    api.held.push(send);
    assert!(!task.is_finished(), "the source keeps running through watch errors");
    task.abort();
}

/// The API server's answer to a write: the whole object.
fn peer_object() -> Value {
    json!({"apiVersion": "network.deckhouse.io/v1alpha1", "kind": "MetalLoadBalancerBGPPeer",
           "metadata": {"name": "tor-a", "resourceVersion": "9"},
           "spec": {"peerAddress": "192.0.2.1", "peerASN": 64500, "myASN": 64501}})
}

/// The watchers share the L2 source's backoff: after a long outage the next attempt comes
/// within its cap of the API server's return, not after kube's default 30 s. Virtual time
/// (paused), so the delay measured is the watcher's own, exactly.
#[tokio::test(start_paused = true)]
async fn after_a_long_outage_the_watchers_follow_within_the_backoff_cap() {
    let (client, mut api) = mock_api();
    let metrics = Arc::new(Metrics::new());
    let (own_entries, _own) = watch::channel(BTreeSet::new());
    let source = Watch {
        client,
        node: "node-1".to_owned(),
        namespace: "d8-metallb".to_owned(),
        own_entries,
    };
    let (feed, mut state) = watch::channel(None);
    let task = tokio::spawn(source.follow(feed, metrics.clone()));
    for (queue, kind) in [
        (&mut api.announcements, "SDNInternalBGPAnnouncement"),
        (&mut api.pools, "MetalLoadBalancerPool"),
        (&mut api.secrets, "Secret"),
    ] {
        let (_, send) = next(queue).await;
        reply(send, 200, &list(kind, "1", Vec::new()));
    }
    let unavailable = json!({"apiVersion": "v1", "kind": "Status", "metadata": {},
                             "status": "Failure", "message": "unavailable", "code": 503});
    let mut failed_at = tokio::time::Instant::now();
    for _ in 0..12 {
        let (request, send) = next(&mut api.peers).await;
        assert_eq!(line(&request), format!("GET {PEERS}?&limit=500"));
        reply(send, 503, &unavailable);
        failed_at = tokio::time::Instant::now();
    }
    let (request, send) = next(&mut api.peers).await;
    let waited = failed_at.elapsed();
    assert!(waited <= RetryBackoff::MAX, "retried after {waited:?}");
    assert_eq!(line(&request), format!("GET {PEERS}?&limit=500"));
    reply(send, 200, &list("MetalLoadBalancerBGPPeer", "2", Vec::new()));
    let first = changed(&mut state).await;
    assert!(first.desired.peers.is_empty());
    let errors =
        metrics.watch_errors.get_or_create(&KindLabel { kind: "MetalLoadBalancerBGPPeer" });
    assert_eq!(errors.get(), 12);
    task.abort();
}

fn session(state: metallb_bgp::session::State, prefixes: usize) -> Session {
    Session {
        state,
        since: SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_601_600),
        prefixes_sent: prefixes,
        bfd: Some(metallb_bfd::State::Up),
        last_error: None,
    }
}

/// Virtual time (paused): the retry after a refusal comes after the writer's own interval.
#[tokio::test(start_paused = true)]
async fn the_session_entry_is_applied_server_side_and_a_refusal_is_counted() {
    let (client, mut api) = mock_api();
    let metrics = Arc::new(Metrics::new());
    let (sessions, updates) = watch::channel(None);
    let (own_entries, own) = watch::channel(BTreeSet::new());
    let task =
        tokio::spawn(status::write(client, "node-1".to_owned(), updates, own, metrics.clone()));
    sessions.send_replace(Some(Sessions::from([(
        "tor-a".to_owned(),
        session(metallb_bgp::session::State::Established, 2),
    )])));

    let want_line =
        format!("PATCH {PEERS}/tor-a/status?&force=true&fieldManager=metallb-bgp-speaker%2Fnode-1");
    let want_body = json!({
        "apiVersion": "network.deckhouse.io/v1alpha1", "kind": "MetalLoadBalancerBGPPeer",
        "metadata": {"name": "tor-a"},
        "status": {"sessions": [{"node": "node-1", "state": "Established",
                                 "since": "2026-12-07T00:00:00Z", "prefixesSent": 2,
                                 "bfdState": "Up"}]},
    });
    let (request, send) = next(&mut api.status).await;
    assert_eq!(line(&request), want_line);
    assert_eq!(
        request.headers().get("content-type").map(|v| v.to_str().expect("ascii")),
        Some("application/apply-patch+yaml")
    );
    let (_, body) = request.into_parts();
    let body: Value =
        serde_json::from_slice(&body.collect_bytes().await.expect("body")).expect("json");
    assert_eq!(body, want_body);
    // The API server refuses it (a webhook, RBAC): counted, never fatal, retried later.
    reply(
        send,
        403,
        &json!({"apiVersion": "v1", "kind": "Status", "metadata": {}, "status": "Failure",
                "message": "forbidden", "reason": "Forbidden", "code": 403}),
    );
    let (request, send) = next(&mut api.status).await;
    assert_eq!(line(&request), want_line, "retried");
    assert_eq!(metrics.bgp.status_errors.get(), 1);
    reply(send, 200, &peer_object());

    // The session goes down: written at once.
    sessions.send_replace(Some(Sessions::from([(
        "tor-a".to_owned(),
        session(metallb_bgp::session::State::Active, 0),
    )])));
    let (request, send) = next(&mut api.status).await;
    let (_, body) = request.into_parts();
    let body: Value =
        serde_json::from_slice(&body.collect_bytes().await.expect("body")).expect("json");
    assert_eq!(body["status"]["sessions"][0]["state"], "Active");
    reply(send, 200, &peer_object());

    // The peers watch shows an entry of this node on a peer it no longer peers with (left by
    // an earlier run): released by applying the object without it.
    own_entries.send_replace(BTreeSet::from(["tor-a".to_owned(), "tor-old".to_owned()]));
    let (request, send) = next(&mut api.status).await;
    assert_eq!(
        line(&request),
        format!(
            "PATCH {PEERS}/tor-old/status?&force=true&fieldManager=metallb-bgp-speaker%2Fnode-1"
        )
    );
    let (_, body) = request.into_parts();
    let body: Value =
        serde_json::from_slice(&body.collect_bytes().await.expect("body")).expect("json");
    assert_eq!(
        body,
        json!({"apiVersion": "network.deckhouse.io/v1alpha1", "kind": "MetalLoadBalancerBGPPeer",
               "metadata": {"name": "tor-old"}})
    );
    reply(send, 200, &peer_object());
    assert!(!task.is_finished());
    task.abort();
}
