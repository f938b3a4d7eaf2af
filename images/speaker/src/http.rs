//! A minimal HTTP/1.1 endpoint for `/metrics`, `/healthz` and `/readyz`.
//!
//! Hand-written on tokio's `TcpListener` rather than a web framework: three fixed GET routes,
//! one response per connection (`Connection: close`), bounded request size, time and number
//! of connections. That is all Prometheus and the kubelet need, and it keeps the data plane's
//! dependency tree small.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use crate::metrics::Metrics;

/// Largest request head read; anything longer is not one of our three GETs.
const MAX_REQUEST: usize = 8 * 1024;
/// A client that has not sent its request and read the answer within this time is dropped, so
/// a stuck scraper cannot pile up connections.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(5);
/// Pause after a failed `accept` (e.g. out of file descriptors) before trying again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// Connections served at once; one more is closed at once (and counted). The clients are one
/// Prometheus (or the kube-rbac-proxy in front) and the kubelet's two probes, so 16 leaves
/// room for retries while a flood can hold at most 16 sockets and tasks, each for at most
/// [`CONNECTION_TIMEOUT`].
pub const MAX_CONNECTIONS: usize = 16;

/// A response: status line, content type, body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code and reason, e.g. `200 OK`.
    pub status: &'static str,
    /// Content type.
    pub content_type: &'static str,
    /// Body.
    pub body: String,
}

/// Routes one request line (`GET /metrics HTTP/1.1`).
pub fn route(request_line: &str, metrics: &Metrics) -> Response {
    let text = |status, body: &str| Response {
        status,
        content_type: "text/plain; charset=utf-8",
        body: body.to_owned(),
    };
    let mut parts = request_line.split_whitespace();
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
        return text("400 Bad Request", "bad request\n");
    };
    if method != "GET" && method != "HEAD" {
        return text("405 Method Not Allowed", "only GET\n");
    }
    let path = target.split('?').next().unwrap_or_default();
    match path {
        "/metrics" => Response {
            status: "200 OK",
            content_type: "application/openmetrics-text; version=1.0.0; charset=utf-8",
            body: metrics.encode(),
        },
        "/healthz" => text("200 OK", "ok\n"),
        "/readyz" if metrics.is_ready() => text("200 OK", &metrics.readiness_text()),
        "/readyz" => text("503 Service Unavailable", &metrics.readiness_text()),
        _ => text("404 Not Found", "not found\n"),
    }
}

/// Serves until the listener fails for good; never returns otherwise.
pub async fn serve(listener: TcpListener, metrics: Arc<Metrics>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let Ok(slot) = slots.clone().try_acquire_owned() else {
                    // Dropping the stream closes it: no task, no buffer for this one.
                    metrics.http_refused.inc();
                    tracing::debug!(%peer, "HTTP connection refused: too many open");
                    continue;
                };
                let metrics = metrics.clone();
                tokio::spawn(async move {
                    let _ =
                        tokio::time::timeout(CONNECTION_TIMEOUT, handle(stream, &metrics)).await;
                    drop(slot);
                });
            }
            Err(error) => {
                tracing::warn!(%error, "metrics listener accept failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
            }
        }
    }
}

async fn handle(mut stream: TcpStream, metrics: &Metrics) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < MAX_REQUEST {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let head = String::from_utf8_lossy(&buf);
    let line = head.lines().next().unwrap_or_default();
    let response = route(line, metrics);
    let body = if line.starts_with("HEAD ") { "" } else { response.body.as_str() };
    let head = format!(
        "HTTP/1.1 {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        response.status,
        response.content_type,
        response.body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        let metrics = Metrics::new();
        assert_eq!(route("GET /healthz HTTP/1.1", &metrics).status, "200 OK");
        assert_eq!(route("GET /readyz HTTP/1.1", &metrics).status, "503 Service Unavailable");
        metrics.set_ready();
        assert_eq!(route("GET /readyz?verbose HTTP/1.1", &metrics).status, "200 OK");
        let page = route("GET /metrics HTTP/1.1", &metrics);
        assert!(page.body.contains("metallb_speaker_owned_ips"));
        assert_eq!(route("POST /metrics HTTP/1.1", &metrics).status, "405 Method Not Allowed");
        assert_eq!(route("GET /nope HTTP/1.1", &metrics).status, "404 Not Found");
        assert_eq!(route("", &metrics).status, "400 Bad Request");
    }

    #[tokio::test]
    async fn serves_over_tcp() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = tokio::spawn(serve(listener, Arc::new(Metrics::new())));
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.expect("write");
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.expect("read");
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
        assert!(answer.ends_with("\r\n\r\nok\n"), "{answer}");
        server.abort();
    }

    #[tokio::test]
    async fn connections_are_bounded() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let metrics = Arc::new(Metrics::new());
        let server = tokio::spawn(serve(listener, metrics.clone()));
        // A slow client holds every slot by never finishing its request.
        let mut idle = Vec::new();
        for _ in 0..MAX_CONNECTIONS {
            let mut stream = TcpStream::connect(addr).await.expect("connect");
            stream.write_all(b"GET /healthz").await.expect("write");
            idle.push(stream);
        }
        // One more: closed without an answer, whatever it asks.
        let mut extra = TcpStream::connect(addr).await.expect("connect");
        let _ = extra.write_all(b"GET /healthz HTTP/1.1\r\n\r\n").await;
        let mut answer = Vec::new();
        let _ = extra.read_to_end(&mut answer).await;
        assert!(answer.is_empty(), "{}", String::from_utf8_lossy(&answer));
        assert_eq!(metrics.http_refused.get(), 1);
        // A slot freed is a slot served again.
        drop(idle.pop());
        let mut answer = String::new();
        for _ in 0..100 {
            let mut stream = TcpStream::connect(addr).await.expect("connect");
            let _ = stream.write_all(b"GET /healthz HTTP/1.1\r\n\r\n").await;
            answer.clear();
            let _ = stream.read_to_string(&mut answer).await;
            if !answer.is_empty() {
                break;
            }
            // The freed slot is released by its task, which may not have run yet.
            tokio::task::yield_now().await;
        }
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
        server.abort();
    }
}
