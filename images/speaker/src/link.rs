//! The only code that touches the operating system's network: AF_PACKET channels (through
//! `pnet_datalink`), IPv6 multicast memberships and the interface list in `/sys/class/net`.
//!
//! Everything above this module sees [`LinkRx`]/[`LinkTx`]; [`MemoryLink`] implements them
//! over channels for tests.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::net::Ipv6Addr;
use std::os::fd::IntoRawFd;
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use pnet_base::MacAddr;
use pnet_datalink::{Channel, DataLinkReceiver, DataLinkSender, NetworkInterface};
use socket2::{Domain, SockFilter, Socket, Type};

use crate::interfaces::InterfaceInfo;
use crate::responder::Iface;

/// Why a link failed.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// Opening a packet socket was refused: the process lacks CAP_NET_RAW.
    #[error(
        "opening a raw AF_PACKET socket on {iface} was refused; the speaker needs the CAP_NET_RAW capability (run as root or add NET_RAW to the container's capabilities)"
    )]
    PermissionDenied {
        /// The interface.
        iface: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Opening the channel failed otherwise (interface gone, no such device).
    #[error("cannot open a packet socket on {iface}")]
    Open {
        /// The interface.
        iface: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Sending or receiving failed.
    #[error("packet socket i/o on {iface} failed")]
    Io {
        /// The interface.
        iface: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The in-memory peer went away.
    #[error("the in-memory link is closed")]
    Closed,
}

/// The receiving half of a link.
pub trait LinkRx: Send {
    /// The next frame, or `None` when the read timeout passed without one (so the caller can
    /// check whether to stop).
    fn recv(&mut self) -> Result<Option<&[u8]>, LinkError>;
}

/// The sending half of a link.
pub trait LinkTx: Send {
    /// Sends one whole Ethernet frame.
    fn send(&mut self, frame: &[u8]) -> Result<(), LinkError>;
}

/// Both halves of an opened link.
pub type LinkPair = (Box<dyn LinkTx>, Box<dyn LinkRx>);

// === AF_PACKET ===

/// Classic BPF program attached to every packet socket so the kernel hands the speaker only
/// what it may answer: incoming ARP, and incoming IPv6 with next header ICMPv6 (58) and type
/// neighbour solicitation (135). Everything else on a busy node (all its TCP/UDP traffic)
/// would otherwise be copied to user space. Our own transmissions (packet type
/// PACKET_OUTGOING = 4, loaded through the ancillary offset SKF_AD_OFF + SKF_AD_PKTTYPE) are
/// dropped too. Jump offsets count instructions after the jump.
const FILTER: [SockFilter; 11] = [
    SockFilter::new(0x20, 0, 0, 0xffff_f004), // 0: ld  pkttype
    SockFilter::new(0x15, 8, 0, 4),           // 1: jeq PACKET_OUTGOING → 10 drop
    SockFilter::new(0x28, 0, 0, 12),          // 2: ldh [12] ethertype
    SockFilter::new(0x15, 5, 0, 0x0806),      // 3: jeq ARP → 9 accept
    SockFilter::new(0x15, 0, 5, 0x86dd),      // 4: jeq IPv6, else → 10 drop
    SockFilter::new(0x30, 0, 0, 20),          // 5: ldb [14 + 6] next header
    SockFilter::new(0x15, 0, 3, 58),          // 6: jeq ICMPv6, else → 10 drop
    SockFilter::new(0x30, 0, 0, 54),          // 7: ldb [14 + 40] ICMPv6 type
    SockFilter::new(0x15, 0, 1, 135),         // 8: jeq NS → 9 accept, else → 10 drop
    SockFilter::new(0x06, 0, 0, 0x0004_0000), // 9: ret 256 KiB: the whole frame
    SockFilter::new(0x06, 0, 0, 0),           // 10: ret 0: drop
];

/// Socket send timeout: a send that cannot go out within a second is reported, not waited on
/// forever (pnet's default is to block indefinitely).
const WRITE_TIMEOUT: Duration = Duration::from_secs(1);

/// Opens an AF_PACKET channel on `iface`: not promiscuous (unicast probes are addressed to the
/// interface's MAC, multicast solicitations reach us through [`Memberships`]), filtered by
/// [`FILTER`], with `read_timeout` so a receive loop can notice it should stop.
pub fn open(iface: &Iface, read_timeout: Duration) -> Result<LinkPair, LinkError> {
    let open_error = |source: io::Error| {
        if matches!(source.raw_os_error(), Some(code) if code == 1 || code == 13) {
            // EPERM / EACCES
            LinkError::PermissionDenied { iface: iface.name.clone(), source }
        } else {
            LinkError::Open { iface: iface.name.clone(), source }
        }
    };
    // Protocol 0: the socket receives nothing until pnet binds it to the interface, so no frame
    // of another interface slips in before the bind.
    let socket = Socket::new(Domain::PACKET, Type::RAW, None).map_err(open_error)?;
    socket.attach_filter(&FILTER).map_err(open_error)?;
    let device = NetworkInterface {
        name: iface.name.clone(),
        description: String::new(),
        index: iface.index,
        mac: Some(iface.mac),
        ips: Vec::new(),
        flags: 0,
    };
    let config = pnet_datalink::Config {
        read_timeout: Some(read_timeout),
        write_timeout: Some(WRITE_TIMEOUT),
        promiscuous: false,
        // pnet takes ownership of the descriptor and closes it, also on error.
        socket_fd: Some(socket.into_raw_fd()),
        ..Default::default()
    };
    match pnet_datalink::channel(&device, config).map_err(open_error)? {
        Channel::Ethernet(tx, rx) => Ok((
            Box::new(PacketTx { iface: iface.name.clone(), tx }),
            Box::new(PacketRx { iface: iface.name.clone(), rx }),
        )),
        _ => Err(open_error(io::Error::other("not an ethernet channel"))),
    }
}

struct PacketTx {
    iface: String,
    tx: Box<dyn DataLinkSender>,
}

impl LinkTx for PacketTx {
    fn send(&mut self, frame: &[u8]) -> Result<(), LinkError> {
        match self.tx.send_to(frame, None) {
            Some(Ok(())) => Ok(()),
            Some(Err(source)) => Err(LinkError::Io { iface: self.iface.clone(), source }),
            None => Err(LinkError::Io {
                iface: self.iface.clone(),
                source: io::Error::other("frame larger than the send buffer"),
            }),
        }
    }
}

struct PacketRx {
    iface: String,
    rx: Box<dyn DataLinkReceiver>,
}

impl LinkRx for PacketRx {
    fn recv(&mut self) -> Result<Option<&[u8]>, LinkError> {
        match self.rx.next() {
            Ok(frame) => Ok(Some(frame)),
            Err(e) if matches!(e.kind(), io::ErrorKind::TimedOut | io::ErrorKind::Interrupted) => {
                Ok(None)
            }
            Err(source) => Err(LinkError::Io { iface: self.iface.clone(), source }),
        }
    }
}

// === multicast memberships ===

/// IPv6 solicited-node multicast memberships, per interface.
///
/// Joined with IPV6_JOIN_GROUP on a plain (unbound) IPv6 datagram socket rather than with
/// PACKET_ADD_MEMBERSHIP on the packet socket: the kernel then both programs the NIC's
/// multicast filter with `33:33:ff:xx:xx:xx` (NICs with hardware filters drop the solicitation
/// otherwise, Cilium #41678) *and* sends MLD reports, so MLD-snooping switches forward the
/// group to this port; a packet-socket membership only does the former. The socket is never
/// bound, so it opens no port, and it needs no privilege.
#[derive(Debug, Default)]
pub struct Memberships {
    socket: Option<Socket>,
    joined: BTreeMap<u32, BTreeSet<Ipv6Addr>>,
}

impl Memberships {
    /// No memberships.
    pub fn new() -> Self {
        Self::default()
    }

    /// Joins and leaves groups so that exactly `wanted` (interface index → groups) is joined.
    /// Returns the failures; each is retried on the next call.
    pub fn sync(
        &mut self,
        wanted: &BTreeMap<u32, BTreeSet<Ipv6Addr>>,
    ) -> Vec<(u32, Ipv6Addr, io::Error)> {
        let mut failures = Vec::new();
        let socket = match &self.socket {
            Some(socket) => socket,
            None => match Socket::new(Domain::IPV6, Type::DGRAM, None) {
                Ok(socket) => self.socket.insert(socket),
                Err(error) => {
                    // IPv6 is disabled on the host: every wanted group fails alike.
                    for (index, groups) in wanted {
                        for group in groups {
                            failures.push((
                                *index,
                                *group,
                                io::Error::new(error.kind(), error.to_string()),
                            ));
                        }
                    }
                    return failures;
                }
            },
        };
        for (index, groups) in &mut self.joined {
            let keep = wanted.get(index);
            groups.retain(|group| {
                if keep.is_some_and(|k| k.contains(group)) {
                    return true;
                }
                // Leaving fails only when the interface is gone, which drops the membership too.
                let _ = socket.leave_multicast_v6(group, *index);
                false
            });
        }
        for (index, groups) in wanted {
            let joined = self.joined.entry(*index).or_default();
            for group in groups {
                if joined.contains(group) {
                    continue;
                }
                match socket.join_multicast_v6(group, *index) {
                    Ok(()) => {
                        joined.insert(*group);
                    }
                    Err(error) => failures.push((*index, *group, error)),
                }
            }
        }
        self.joined.retain(|_, groups| !groups.is_empty());
        failures
    }

    /// The groups currently joined.
    pub fn joined(&self) -> &BTreeMap<u32, BTreeSet<Ipv6Addr>> {
        &self.joined
    }
}

// === interface list ===

/// `IFF_UP` from `<linux/if.h>`.
const IFF_UP: u32 = 0x1;
/// `IFF_BROADCAST`.
const IFF_BROADCAST: u32 = 0x2;
/// `IFF_LOOPBACK`.
const IFF_LOOPBACK: u32 = 0x8;

/// Reads every interface from a sysfs `class/net` directory (normally `/sys/class/net`, which
/// shows the network namespace sysfs was mounted in). An interface that disappears while being
/// read is skipped.
pub fn read_interfaces(root: &Path) -> io::Result<Vec<InterfaceInfo>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(root)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(info) = read_interface(&entry.path(), name) {
            out.push(info);
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

fn read_interface(dir: &Path, name: String) -> Option<InterfaceInfo> {
    let read =
        |file: &str| std::fs::read_to_string(dir.join(file)).ok().map(|s| s.trim().to_owned());
    let index = read("ifindex")?.parse().ok()?;
    let flags = u32::from_str_radix(read("flags")?.trim_start_matches("0x"), 16).ok()?;
    let operstate = read("operstate").unwrap_or_default();
    let mac = read("address").and_then(|a| parse_mac(&a));
    let master = std::fs::read_link(dir.join("master"))
        .ok()
        .and_then(|target| target.file_name().map(|n| n.to_string_lossy().into_owned()));
    Some(InterfaceInfo {
        name,
        index,
        mac,
        // "unknown" is what dummy devices and some drivers report while working.
        up: flags & IFF_UP != 0 && matches!(operstate.as_str(), "up" | "unknown"),
        broadcast: flags & IFF_BROADCAST != 0,
        loopback: flags & IFF_LOOPBACK != 0,
        master,
    })
}

/// Parses `aa:bb:cc:dd:ee:ff`; anything else (InfiniBand's 20-byte addresses) is `None`.
fn parse_mac(text: &str) -> Option<MacAddr> {
    let mut octets = [0u8; 6];
    let mut parts = text.split(':');
    for octet in &mut octets {
        *octet = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts
        .next()
        .is_none()
        .then_some(MacAddr(octets[0], octets[1], octets[2], octets[3], octets[4], octets[5]))
}

// === in memory ===

/// A link over in-process channels: frames sent through [`MemoryLink::inject`] are received
/// by `rx`; frames sent through `tx` come out of [`MemoryLink::sent`].
pub struct MemoryLink {
    /// The sending half to hand to the code under test.
    pub tx: MemoryTx,
    /// The receiving half to hand to the code under test.
    pub rx: MemoryRx,
    /// Feeds frames to `rx`.
    pub inject: mpsc::Sender<Vec<u8>>,
    /// Collects frames sent through `tx`.
    pub sent: mpsc::Receiver<Vec<u8>>,
}

impl MemoryLink {
    /// A new link whose `recv` waits at most `read_timeout`.
    pub fn new(read_timeout: Duration) -> Self {
        let (inject, incoming) = mpsc::channel();
        let (outgoing, sent) = mpsc::channel();
        Self {
            tx: MemoryTx { outgoing },
            rx: MemoryRx { incoming, read_timeout, current: Vec::new() },
            inject,
            sent,
        }
    }
}

/// Sending half of a [`MemoryLink`].
pub struct MemoryTx {
    outgoing: mpsc::Sender<Vec<u8>>,
}

impl LinkTx for MemoryTx {
    fn send(&mut self, frame: &[u8]) -> Result<(), LinkError> {
        self.outgoing.send(frame.to_vec()).map_err(|_| LinkError::Closed)
    }
}

/// Receiving half of a [`MemoryLink`].
pub struct MemoryRx {
    incoming: mpsc::Receiver<Vec<u8>>,
    read_timeout: Duration,
    current: Vec<u8>,
}

impl LinkRx for MemoryRx {
    fn recv(&mut self) -> Result<Option<&[u8]>, LinkError> {
        match self.incoming.recv_timeout(self.read_timeout) {
            Ok(frame) => {
                self.current = frame;
                Ok(Some(&self.current))
            }
            Err(mpsc::RecvTimeoutError::Timeout) => Ok(None),
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(LinkError::Closed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_sysfs_tree() {
        let root = tempfile::tempdir().expect("tempdir");
        let add = |name: &str, index: u32, flags: &str, state: &str, mac: &str| {
            let dir = root.path().join(name);
            std::fs::create_dir(&dir).expect("mkdir");
            std::fs::write(dir.join("ifindex"), format!("{index}\n")).expect("write");
            std::fs::write(dir.join("flags"), format!("{flags}\n")).expect("write");
            std::fs::write(dir.join("operstate"), format!("{state}\n")).expect("write");
            std::fs::write(dir.join("address"), format!("{mac}\n")).expect("write");
            dir
        };
        add("lo", 1, "0x9", "unknown", "00:00:00:00:00:00");
        add("eth0", 2, "0x1003", "up", "02:00:00:00:00:0a");
        let member = add("eth1", 3, "0x1003", "up", "02:00:00:00:00:0b");
        std::os::unix::fs::symlink("../bond0", member.join("master")).expect("symlink");
        add("eth2", 4, "0x1002", "down", "02:00:00:00:00:0c");
        add(
            "ib0",
            5,
            "0x1003",
            "up",
            "80:00:00:48:fe:80:00:00:00:00:00:00:00:00:00:00:00:00:00:01",
        );
        std::fs::create_dir(root.path().join("half-gone")).expect("mkdir");

        let infos = read_interfaces(root.path()).expect("read");
        let names: Vec<&str> = infos.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["eth0", "eth1", "eth2", "ib0", "lo"]);
        let eth0 = &infos[0];
        assert_eq!(
            (eth0.index, eth0.mac, eth0.up, eth0.broadcast, eth0.loopback),
            (2, Some(MacAddr(2, 0, 0, 0, 0, 0x0a)), true, true, false)
        );
        assert_eq!(infos[1].master.as_deref(), Some("bond0"));
        assert!(!infos[2].up);
        assert_eq!(infos[3].mac, None);
        assert!(infos[4].loopback);
    }

    #[test]
    fn memory_link_round_trip() {
        let mut link = MemoryLink::new(Duration::from_millis(10));
        assert!(matches!(link.rx.recv(), Ok(None)));
        link.inject.send(vec![1, 2, 3]).expect("send");
        assert_eq!(link.rx.recv().expect("frame"), Some(&[1u8, 2, 3][..]));
        link.tx.send(&[4, 5]).expect("send");
        assert_eq!(link.sent.recv().expect("sent"), vec![4, 5]);
    }
}
