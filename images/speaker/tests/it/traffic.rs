//! Service traffic for the BGP wire tests: an HTTP backend in each node namespace answering
//! with the node's name, and a client in its own namespace fetching the Service IP through the
//! router, one new connection per fetch (a new source port each time, so the router's 5-tuple
//! ECMP hash spreads them over the nodes).
//!
//! Both run on threads of the test process that moved into the lab's namespaces with
//! setns(2), which moves only the calling thread; a socket stays in the namespace it was made
//! in. So no helper program is needed, and the backends are independent of the speaker: a
//! killed speaker leaves its node serving, as a node whose speaker pod crashed does. Dropping
//! a [`Backends`] or a [`Client`] stops and joins its threads (each loop is bounded), so they
//! are out of the namespaces before the lab removes them: declare them after the lab.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use nix::sched::{CloneFlags, setns};

/// Bound of one fetch's connect: the router answers at once with a route, and without one a
/// SYN is lost or refused; either way a fetch that takes longer counts as failed.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// Bound of reading and writing one request or answer.
const IO_TIMEOUT: Duration = Duration::from_secs(1);
/// Pause between fetches, and the backends' accept polling period.
const PAUSE: Duration = Duration::from_millis(10);
/// Cap on a thread's life should nobody stop it: far longer than any test.
const MAX_LIFETIME: Duration = Duration::from_secs(300);

/// Moves the calling thread into network namespace `netns` (its full name).
fn enter(netns: &str) -> Result<()> {
    let path = Path::new("/run/netns").join(netns);
    let file = std::fs::File::open(&path).with_context(|| format!("open {}", path.display()))?;
    setns(&file, CloneFlags::CLONE_NEWNET).with_context(|| format!("setns into {netns}"))?;
    Ok(())
}

/// HTTP servers answering `<node name>\n`, one per node namespace, until dropped.
pub(crate) struct Backends {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Backends {
    /// Starts a server on `addr` in each of `nodes` (full namespace name, node name); returns
    /// once every one listens.
    pub(crate) fn start(nodes: &[(String, String)], addr: SocketAddr) -> Result<Backends> {
        let mut backends = Backends { stop: Arc::default(), threads: Vec::new() };
        for (netns, name) in nodes {
            let (ready, listening) = mpsc::channel();
            let (netns, body, stop) = (netns.clone(), format!("{name}\n"), backends.stop.clone());
            backends.threads.push(std::thread::spawn(move || {
                let listener = enter(&netns).and_then(|()| {
                    let l = TcpListener::bind(addr).with_context(|| format!("bind {addr}"))?;
                    l.set_nonblocking(true)?;
                    Ok(l)
                });
                let listener = match listener {
                    Ok(listener) => {
                        let _ = ready.send(Ok(()));
                        listener
                    }
                    Err(error) => {
                        let _ = ready.send(Err(error));
                        return;
                    }
                };
                serve(&listener, &body, &stop);
            }));
            listening.recv().map_err(|_| anyhow!("a backend thread died"))??;
        }
        Ok(backends)
    }
}

fn serve(listener: &TcpListener, body: &str, stop: &AtomicBool) {
    let started = Instant::now();
    while !stop.load(Ordering::Relaxed) && started.elapsed() < MAX_LIFETIME {
        match listener.accept() {
            Ok((stream, _)) => answer(stream, body),
            Err(_) => std::thread::sleep(PAUSE),
        }
    }
}

/// Reads the request head (bounded), then answers; the client waits for nothing else.
fn answer(mut stream: TcpStream, body: &str) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(IO_TIMEOUT));
    let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
    let mut head = Vec::new();
    let mut buf = [0u8; 256];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 4096 {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let _ = write!(
        stream,
        "HTTP/1.0 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

impl Drop for Backends {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// What the client saw.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    /// Answers by the name in them.
    pub(crate) answers: BTreeMap<String, u32>,
    /// Failed fetches: when (since the client started) and why.
    pub(crate) failures: Vec<(Duration, String)>,
}

impl Tally {
    pub(crate) fn fetches(&self) -> u32 {
        self.answers.values().sum::<u32>() + u32::try_from(self.failures.len()).unwrap_or(u32::MAX)
    }
}

/// A client fetching `http://addr/` in a loop from its namespace until [`Client::finish`].
pub(crate) struct Client {
    stop: Arc<AtomicBool>,
    tally: Arc<Mutex<Tally>>,
    thread: Option<JoinHandle<Result<()>>>,
}

impl Client {
    /// Starts fetching from namespace `netns` (its full name).
    pub(crate) fn start(netns: &str, addr: SocketAddr) -> Client {
        let (stop, tally) = (Arc::new(AtomicBool::new(false)), Arc::new(Mutex::default()));
        let (netns, flag, shared) = (netns.to_owned(), stop.clone(), Arc::clone(&tally));
        let thread = std::thread::spawn(move || -> Result<()> {
            enter(&netns)?;
            let started = Instant::now();
            while !flag.load(Ordering::Relaxed) && started.elapsed() < MAX_LIFETIME {
                let result = fetch(addr);
                let mut tally: std::sync::MutexGuard<'_, Tally> =
                    shared.lock().unwrap_or_else(PoisonError::into_inner);
                match result {
                    Ok(name) => *tally.answers.entry(name).or_default() += 1,
                    Err(error) => tally.failures.push((started.elapsed(), format!("{error:#}"))),
                }
                drop(tally);
                std::thread::sleep(PAUSE);
            }
            Ok(())
        });
        Client { stop, tally, thread: Some(thread) }
    }

    /// The names that answered so far.
    pub(crate) fn answered(&self) -> Vec<String> {
        let tally = self.tally.lock().unwrap_or_else(PoisonError::into_inner);
        tally.answers.keys().cloned().collect()
    }

    /// Stops the client and returns what it saw.
    pub(crate) fn finish(mut self) -> Result<Tally> {
        self.stop.store(true, Ordering::Relaxed);
        let thread = self.thread.take().context("finished twice")?;
        thread.join().map_err(|_| anyhow!("the client thread panicked"))??;
        let mut tally = self.tally.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(std::mem::take(&mut *tally))
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One `GET /` over a new connection: the body, trimmed.
fn fetch(addr: SocketAddr) -> Result<String> {
    let mut stream = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT).context("connect")?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    stream.write_all(b"GET / HTTP/1.0\r\n\r\n")?;
    let mut text = String::new();
    stream.take(4096).read_to_string(&mut text).context("read")?;
    let (_, body) = text.split_once("\r\n\r\n").context("no end of the head")?;
    Ok(body.trim().to_owned())
}
