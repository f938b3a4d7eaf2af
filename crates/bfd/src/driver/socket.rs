//! The UDP sockets of one local address (RFC 5881): a receiver on port 3784 that reports each
//! datagram's TTL or hop limit, and a sender bound to a port of 49152–65535 that sends with
//! TTL 255.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd as _;

use nix::sys::socket::{
    ControlMessageOwned, MsgFlags, SockaddrStorage, recvmsg, setsockopt, sockopt,
};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use tokio::io::Interest;
use tokio::net::UdpSocket;

use crate::{Error, Result};

/// Destination port of single-hop control packets (RFC 5881 §4).
pub const CONTROL_PORT: u16 = 3784;
/// Source ports of control packets (RFC 5881 §4: "MUST be in the range 49152 through 65535").
pub const SOURCE_PORTS: std::ops::RangeInclusive<u16> = 49152..=65535;
/// TTL / hop limit of every packet we send, and the only one we accept (RFC 5881 §5, the
/// Generalized TTL Security Mechanism: only a directly connected sender can arrive with 255).
pub const TTL: u8 = 255;
/// DSCP CS6 ("network control", RFC 4594 §3.2) in the TOS / traffic class byte, so that queues
/// under load drop data before the packets that keep a session alive.
const TOS_CS6: u32 = 0xc0;

/// A datagram as received.
#[derive(Debug)]
pub(crate) struct Datagram {
    pub(crate) len: usize,
    pub(crate) from: SocketAddr,
    /// The TTL (IPv4) or hop limit (IPv6) it arrived with, if the kernel said.
    pub(crate) ttl: Option<u8>,
}

/// The pair of sockets of one local address.
#[derive(Debug)]
pub(crate) struct Sockets {
    pub(crate) rx: UdpSocket,
    pub(crate) tx: UdpSocket,
}

fn socket_error(action: &'static str, addr: SocketAddr) -> impl FnOnce(io::Error) -> Error {
    move |source| Error::Socket { action, addr, source }
}

fn new_socket(local: IpAddr) -> io::Result<Socket> {
    let domain = if local.is_ipv4() { Domain::IPV4 } else { Domain::IPV6 };
    let socket = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
    if local.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_nonblocking(true)?;
    Ok(socket)
}

impl Sockets {
    /// Binds both sockets of `local`; `first_port` is where the search for a free source port
    /// starts (random, so that restarts do not reuse the port a peer still associates with the
    /// old session).
    pub(crate) fn bind(local: IpAddr, first_port: u16) -> Result<Sockets> {
        let rx_addr = SocketAddr::new(local, CONTROL_PORT);
        let rx = new_socket(local).map_err(socket_error("create the receiving socket", rx_addr))?;
        match local {
            IpAddr::V4(_) => setsockopt(&rx, sockopt::Ipv4RecvTtl, &true)
                .map_err(io::Error::from)
                .map_err(socket_error("ask for the TTL of received packets", rx_addr))?,
            IpAddr::V6(_) => rx
                .set_recv_hoplimit_v6(true)
                .map_err(socket_error("ask for the hop limit of received packets", rx_addr))?,
        }
        rx.bind(&SockAddr::from(rx_addr)).map_err(socket_error("bind", rx_addr))?;

        let tx = new_socket(local)
            .map_err(socket_error("create the sending socket", SocketAddr::new(local, 0)))?;
        let setup = match local {
            IpAddr::V4(_) => tx.set_ttl_v4(u32::from(TTL)).and_then(|()| tx.set_tos_v4(TOS_CS6)),
            IpAddr::V6(_) => {
                tx.set_unicast_hops_v6(u32::from(TTL)).and_then(|()| tx.set_tclass_v6(TOS_CS6))
            }
        };
        setup.map_err(socket_error("set TTL 255 and CS6", SocketAddr::new(local, 0)))?;
        bind_source_port(&tx, local, first_port)?;

        let to_tokio = |socket: Socket, addr| {
            UdpSocket::from_std(socket.into()).map_err(socket_error("register with tokio", addr))
        };
        Ok(Sockets { rx: to_tokio(rx, rx_addr)?, tx: to_tokio(tx, SocketAddr::new(local, 0))? })
    }

    /// Receives one datagram into `buf` without blocking (`WouldBlock` when none is queued).
    pub(crate) fn try_receive(&self, buf: &mut [u8]) -> io::Result<Datagram> {
        self.rx.try_io(Interest::READABLE, || {
            let mut iov = [io::IoSliceMut::new(buf)];
            // Room for one integer control message (IP_TTL or IPV6_HOPLIMIT), twice for slack.
            let mut control = nix::cmsg_space!(i32, i32);
            let message = recvmsg::<SockaddrStorage>(
                self.rx.as_raw_fd(),
                &mut iov,
                Some(&mut control),
                MsgFlags::MSG_DONTWAIT,
            )
            .map_err(io::Error::from)?;
            let mut ttl = None;
            for cmsg in message.cmsgs().map_err(io::Error::from)? {
                ttl = match cmsg {
                    ControlMessageOwned::Ipv4Ttl(t) | ControlMessageOwned::Ipv6HopLimit(t) => {
                        u8::try_from(t).ok()
                    }
                    _ => ttl,
                };
            }
            let from = message
                .address
                .and_then(|a| {
                    a.as_sockaddr_in()
                        .map(|v4| SocketAddr::from(*v4))
                        .or_else(|| a.as_sockaddr_in6().map(|v6| SocketAddr::from(*v6)))
                })
                .ok_or_else(|| io::Error::other("datagram without a source address"))?;
            Ok(Datagram { len: message.bytes, from, ttl })
        })
    }
}

/// Binds `socket` to `local` and the first free port of [`SOURCE_PORTS`] from `first_port` on,
/// wrapping around; each port is tried once.
fn bind_source_port(socket: &Socket, local: IpAddr, first_port: u16) -> Result<()> {
    let (low, high) = (*SOURCE_PORTS.start(), *SOURCE_PORTS.end());
    let count = u32::from(high - low) + 1;
    let start = u32::from(first_port.clamp(low, high) - low);
    let mut last = None;
    for i in 0..count {
        let port = low + u16::try_from((start + i) % count).unwrap_or(0);
        match socket.bind(&SockAddr::from(SocketAddr::new(local, port))) {
            Ok(()) => return Ok(()),
            Err(error) if error.kind() == io::ErrorKind::AddrInUse => last = Some(error),
            Err(error) => return Err(socket_error("bind", SocketAddr::new(local, port))(error)),
        }
    }
    Err(socket_error("find a free source port in 49152-65535", SocketAddr::new(local, 0))(
        last.unwrap_or_else(|| io::Error::from(io::ErrorKind::AddrInUse)),
    ))
}
