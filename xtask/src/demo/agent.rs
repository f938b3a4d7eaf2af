//! The small programs the demo runs inside namespaces, as hidden subcommands of the xtask
//! binary (`ip netns exec NS xtask demo-node ...`), so the demo needs nothing besides iproute2:
//!
//! - `demo-node`: what a node contributes besides the speaker. It plays kube-proxy in IPVS mode
//!   with `strictARP: true`, which sets `arp_ignore=1` / `arp_announce=2` so the kernel never
//!   answers ARP for the Service IPs it holds on `kube-ipvs0` (the demo adds them there), and
//!   it plays the Service's backend: an HTTP server answering with the node's name, and on
//!   the same port a UDP responder answering each datagram with one datagram carrying the
//!   name, sent from the address the request was sent to (the Service IP), as a DNS server
//!   behind a load-balancer IP does.
//! - `demo-get`: one plain HTTP/1.0 GET, the body on stdout (the speakers' `/readyz`,
//!   `/metrics`, a first fetch of each Service IP).
//! - `demo-watch`: the client during the failover, asking every target in a loop, one line
//!   per request on stdout: `<unix ms> <ip> <ms taken> ok <node>` or
//!   `<unix ms> <ip> <ms taken> fail <error>` (the time is the request's end). A request is an
//!   HTTP GET over a new connection ([`Probe::Http`], the L2 demo) or one UDP datagram from a
//!   fresh source port ([`Probe::Udp`], the BGP demo: a route change can cut a TCP connection
//!   in flight, never a single datagram).
//!
//! Both long-running helpers stop when their stdin closes: the demo holds the other end, so
//! they end with it even when it is killed with SIGKILL and cannot clean up.

use std::io::{BufRead, IoSlice, IoSliceMut, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use nix::sys::socket::{
    ControlMessage, ControlMessageOwned, MsgFlags, SockaddrIn, recvmsg, sendmsg, setsockopt,
    sockopt,
};

/// The kernel settings kube-proxy writes in IPVS mode with `strictARP: true`
/// (kubernetes/kubernetes pkg/proxy/ipvs): answer ARP only for addresses on the receiving
/// interface, and source ARP requests from the outgoing interface's address.
pub(crate) const STRICT_ARP: [(&str, &str); 2] =
    [("net/ipv4/conf/all/arp_ignore", "1"), ("net/ipv4/conf/all/arp_announce", "2")];

/// Bound of one connect: a live owner on a local bridge answers a SYN in microseconds, in the
/// kernel, whatever the load; a SYN to a dead node's MAC is lost, and a short bound keeps the
/// failover measurement fine-grained.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_millis(250);
/// Bound of reading one answer: the server is a process that may wait for a busy CPU.
pub(crate) const IO_TIMEOUT: Duration = Duration::from_secs(2);
/// Bound of one UDP request, from sending it to its answer. A live node answers from a
/// user-space thread within a millisecond when idle; the demo's two-core machine also runs
/// FRR, three speakers and the hooks, so an answer may wait for a busy CPU for tens of
/// milliseconds, and half a second leaves a wide margin over that. A request that reached no
/// live node (a dead node's, before the router dropped it) never gets an answer and holds its
/// loop this long, which keeps the measurement fine enough at half a second.
pub(crate) const UDP_TIMEOUT: Duration = Duration::from_millis(500);
/// Largest UDP request or answer; ours are a node's name.
const MAX_DATAGRAM: usize = 512;
/// What a UDP request carries: anything would do, the responder only answers.
const UDP_REQUEST: &[u8] = b"who\n";
/// Largest response read; ours are a few bytes, metrics pages a few KiB.
const MAX_RESPONSE: u64 = 1 << 20;
/// Largest request head the node server reads.
const MAX_REQUEST: usize = 4096;
/// The node server's lifetime cap, should its stdin never close (a parent that leaked the
/// pipe): far longer than any demo.
const NODE_MAX_LIFETIME: Duration = Duration::from_secs(3600);

/// `demo-node`: strict ARP, then an HTTP server and a UDP responder on `listen` answering
/// `<node>\n`, until stdin closes.
pub fn node(name: &str, listen: SocketAddr) -> Result<()> {
    for (key, value) in STRICT_ARP {
        let path = format!("/proc/sys/{key}");
        std::fs::write(&path, value).with_context(|| format!("write {value} to {path}"))?;
    }
    let listener = TcpListener::bind(listen).with_context(|| format!("listen on {listen}"))?;
    let udp = UdpResponder::bind(listen)?;
    exit_when_stdin_closes();
    {
        let name = name.to_owned();
        std::thread::spawn(move || udp.serve(name.as_bytes()));
    }
    let started = Instant::now();
    let body = format!("{name}\n");
    for stream in listener.incoming() {
        if started.elapsed() > NODE_MAX_LIFETIME {
            break;
        }
        // A failed accept (a client gone before we got to it) is no reason to stop serving.
        let Ok(stream) = stream else { continue };
        let body = body.clone();
        // One thread per connection: a slow client must not hold up the next fetch, which the
        // failover measurement would count as an outage.
        std::thread::spawn(move || serve_one(stream, &body));
    }
    Ok(())
}

fn serve_one(mut stream: TcpStream, body: &str) {
    let _ = stream.set_read_timeout(Some(IO_TIMEOUT));
    let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
    let mut head = Vec::new();
    let mut buf = [0u8; 512];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_REQUEST {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let response = format!(
        "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes());
}

/// The UDP half of `demo-node`: one socket on the wildcard address that answers each
/// datagram from the address it was sent to.
///
/// Bound to the wildcard, the kernel would pick the answer's source by the route back to the
/// client (the node's own address), and the client, which asked the Service IP, would drop it.
/// The Service IPs are added to `kube-ipvs0` after the node starts, so the socket cannot be
/// bound to them either; `IP_PKTINFO` hands each datagram's destination to us, and the same
/// option on the answer makes it the source (ip(7)).
struct UdpResponder {
    socket: UdpSocket,
}

impl UdpResponder {
    fn bind(listen: SocketAddr) -> Result<UdpResponder> {
        if !listen.is_ipv4() {
            bail!("the UDP responder serves IPv4 only, not {listen}");
        }
        let socket = UdpSocket::bind(listen).with_context(|| format!("UDP on {listen}"))?;
        setsockopt(&socket, sockopt::Ipv4PacketInfo, &true).context("IP_PKTINFO")?;
        Ok(UdpResponder { socket })
    }

    /// Answers every datagram with `body`, for ever. A failed one is skipped (the client
    /// counts it as lost); the pause keeps an error that persists from spinning a core.
    fn serve(&self, body: &[u8]) {
        loop {
            if self.answer_one(body).is_err() {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }

    fn answer_one(&self, body: &[u8]) -> Result<()> {
        let fd = self.socket.as_raw_fd();
        let mut buf = [0u8; MAX_DATAGRAM];
        let mut space = nix::cmsg_space!(nix::libc::in_pktinfo);
        let mut iov = [IoSliceMut::new(&mut buf)];
        let msg = recvmsg::<SockaddrIn>(fd, &mut iov, Some(&mut space), MsgFlags::empty())?;
        let from = msg.address.context("a datagram without a sender")?;
        let to = msg
            .cmsgs()?
            .find_map(|c| match c {
                ControlMessageOwned::Ipv4PacketInfo(info) => Some(info.ipi_addr),
                _ => None,
            })
            .context("a datagram without IP_PKTINFO")?;
        let source = nix::libc::in_pktinfo {
            ipi_ifindex: 0,
            ipi_spec_dst: to,
            ipi_addr: nix::libc::in_addr { s_addr: 0 },
        };
        let answer = [IoSlice::new(body), IoSlice::new(b"\n")];
        let cmsg = [ControlMessage::Ipv4PacketInfo(&source)];
        sendmsg(fd, &answer, &cmsg, MsgFlags::empty(), Some(&from))?;
        Ok(())
    }
}

/// One UDP request from a fresh source port: the answering node's name.
pub(crate) fn ask_udp(addr: SocketAddr) -> Result<String> {
    let local = if addr.is_ipv4() {
        SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0))
    } else {
        SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, 0))
    };
    // A new socket per request: the kernel picks a new ephemeral port, so the router's
    // 5-tuple hash spreads the requests as it spreads new connections.
    let socket = UdpSocket::bind(local).context("a UDP socket")?;
    // Connected: the kernel drops datagrams from any other source than the Service IP and
    // port, so an answer from a wrong address counts as none.
    socket.connect(addr).with_context(|| format!("connect {addr}"))?;
    socket.set_read_timeout(Some(UDP_TIMEOUT))?;
    socket.send(UDP_REQUEST).with_context(|| format!("send to {addr}"))?;
    let mut buf = [0u8; MAX_DATAGRAM];
    let n = socket.recv(&mut buf).with_context(|| format!("no answer from {addr}"))?;
    Ok(String::from_utf8_lossy(&buf[..n]).trim().to_owned())
}

/// Ends this process when stdin reaches end-of-file.
fn exit_when_stdin_closes() {
    std::thread::spawn(|| {
        let mut sink = Vec::new();
        let _ = std::io::stdin().lock().read_to_end(&mut sink);
        std::process::exit(0);
    });
}

/// One HTTP/1.0 GET: (status code, body).
pub(crate) fn fetch(addr: SocketAddr, path: &str) -> Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)
        .with_context(|| format!("connect {addr}"))?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {}\r\n\r\n", addr.ip())?;
    let mut response = Vec::new();
    stream.take(MAX_RESPONSE).read_to_end(&mut response).context("read the response")?;
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text.split_once("\r\n\r\n").context("no end of the response head")?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("bad status line {:?}", head.lines().next()))?;
    Ok((status, body.to_owned()))
}

/// `demo-get`: prints the body of `GET path` from `addr`; fails unless the status is 200.
pub fn get(addr: SocketAddr, path: &str) -> Result<()> {
    let (status, body) = fetch(addr, path)?;
    if status != 200 {
        bail!("GET http://{addr}{path}: status {status}");
    }
    print!("{body}");
    Ok(())
}

/// What one request of `demo-watch` is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Probe {
    /// `GET /` over a new TCP connection.
    Http,
    /// One UDP datagram from a fresh source port, answered by one datagram.
    Udp,
}

impl Probe {
    /// One request: `ok <node>` or `fail <why>`.
    fn once(self, target: SocketAddr) -> String {
        let answer = match self {
            Probe::Http => fetch(target, "/").and_then(|(status, body)| {
                if status == 200 { Ok(body) } else { bail!("status {status}") }
            }),
            Probe::Udp => ask_udp(target),
        };
        match answer {
            Ok(body) => format!("ok {}", body.trim()),
            Err(error) => format!("fail {}", crate::demo::chain(&error)),
        }
    }

    /// The flag of `demo-watch` that selects it.
    pub(crate) fn arg(self) -> &'static str {
        match self {
            Probe::Http => "http",
            Probe::Udp => "udp",
        }
    }
}

/// `demo-watch`: asks every target in its own loop, `every` apart, printing one line per
/// request, until stdin closes or `max` has passed.
pub fn watch(targets: &[SocketAddr], probe: Probe, every: Duration, max: Duration) -> Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut sink = Vec::new();
            let _ = std::io::stdin().lock().read_to_end(&mut sink);
            stop.store(true, Ordering::Relaxed);
        });
    }
    let started = Instant::now();
    let workers: Vec<_> = targets
        .iter()
        .map(|&target| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) && started.elapsed() < max {
                    let fetch_started = Instant::now();
                    let line = probe.once(target);
                    let took = fetch_started.elapsed().as_millis();
                    let printed = writeln!(
                        std::io::stdout().lock(),
                        "{} {} {took} {line}",
                        unix_ms(),
                        target.ip()
                    );
                    // Nobody reads any more (the demo is gone): stop.
                    if printed.is_err() {
                        break;
                    }
                    std::thread::sleep(every);
                }
            })
        })
        .collect();
    for worker in workers {
        let _ = worker.join();
    }
    Ok(())
}

/// Milliseconds since the Unix epoch: the demo compares the helper's timestamps with its own,
/// on the same machine's clock.
pub(crate) fn unix_ms() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or_default()
}

/// One line of `demo-watch`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Sample {
    /// When the fetch ended, Unix milliseconds.
    pub at: u128,
    /// How long it took, milliseconds.
    pub took: u128,
    /// The target.
    pub ip: std::net::IpAddr,
    /// The answering node, or why there was no answer.
    pub answer: Result<String, String>,
}

impl Sample {
    /// Parses a `demo-watch` line.
    pub(crate) fn parse(line: &str) -> Option<Sample> {
        let mut parts = line.splitn(5, ' ');
        let at = parts.next()?.parse().ok()?;
        let ip = parts.next()?.parse().ok()?;
        let took = parts.next()?.parse().ok()?;
        let rest = parts.next()?;
        let detail = parts.next().unwrap_or_default().to_owned();
        let answer = match rest {
            "ok" => Ok(detail),
            "fail" => Err(detail),
            _ => return None,
        };
        Some(Sample { at, took, ip, answer })
    }

    /// When the fetch started, Unix milliseconds.
    pub(crate) fn started(&self) -> u128 {
        self.at.saturating_sub(self.took)
    }
}

/// Reads `demo-watch` lines until end of file, handing each sample to `push`.
pub(crate) fn read_samples(reader: impl Read, mut push: impl FnMut(Sample)) {
    for line in std::io::BufReader::new(reader).lines() {
        let Ok(line) = line else { break };
        if let Some(sample) = Sample::parse(&line) {
            push(sample);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_round_trip() {
        let ok = Sample::parse("1700000000123 198.51.100.10 3 ok front-1").expect("ok line");
        assert_eq!(ok.at, 1_700_000_000_123);
        assert_eq!((ok.took, ok.started()), (3, 1_700_000_000_120));
        assert_eq!(ok.ip.to_string(), "198.51.100.10");
        assert_eq!(ok.answer, Ok("front-1".to_owned()));
        let fail = Sample::parse("5 198.51.100.11 250 fail connect 198.51.100.11:80: timed out")
            .expect("fail line");
        assert_eq!(fail.answer, Err("connect 198.51.100.11:80: timed out".to_owned()));
        assert_eq!(Sample::parse("garbage"), None);
        assert_eq!(fail.started(), 0);
        assert_eq!(Sample::parse("5 198.51.100.11 1 maybe x"), None);
        assert_eq!(Sample::parse("5 198.51.100.11 ok front-1"), None);
    }

    #[test]
    fn fetch_speaks_http_1_0_with_the_node_server() -> Result<()> {
        // The server half of `demo-node`, on loopback, without the sysctls (they need a
        // namespace of our own).
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let server = std::thread::spawn(move || {
            for _ in 0..2 {
                let (stream, _) = listener.accept().expect("accept");
                serve_one(stream, "front-1\n");
            }
        });
        assert_eq!(fetch(addr, "/")?, (200, "front-1\n".to_owned()));
        assert_eq!(fetch(addr, "/anything")?.1, "front-1\n");
        server.join().expect("server thread");
        // Nobody listens any more: a clear error, not a hang.
        let error = fetch(addr, "/").expect_err("closed port");
        assert!(crate::demo::chain(&error).contains(&format!("connect {addr}")), "{error:#}");
        Ok(())
    }

    #[test]
    fn udp_requests_are_answered_from_the_address_they_were_sent_to() -> Result<()> {
        let responder = UdpResponder::bind("127.0.0.1:0".parse()?)?;
        let addr = responder.socket.local_addr()?;
        let server = std::thread::spawn(move || {
            for _ in 0..2 {
                responder.answer_one(b"front-2").expect("an answer");
            }
        });
        // `ask_udp` connects its socket, so an answer from any other source would be dropped.
        assert_eq!(ask_udp(addr)?, "front-2");
        assert_eq!(Probe::Udp.once(addr), "ok front-2");
        server.join().expect("server thread");
        // Nobody answers any more: a failure within the bound, not a hang.
        let line = Probe::Udp.once(addr);
        assert!(line.starts_with(&format!("fail no answer from {addr}")), "{line}");
        Ok(())
    }
}
