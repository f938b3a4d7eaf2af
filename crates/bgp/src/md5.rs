//! TCP MD5 signatures (RFC 2385) through `setsockopt(TCP_MD5SIG)`.
//!
//! Neither socket2 nor nix exposes this option, and libc has the constant but not the
//! `struct tcp_md5sig` it takes, so the struct is laid out here from `linux/tcp.h` and the one
//! `setsockopt` call is this crate's only `unsafe`: it passes a pointer to a fully initialised,
//! correctly sized value that the kernel only reads.
#![allow(unsafe_code)]

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, BorrowedFd};

/// The longest key Linux accepts (`TCP_MD5SIG_MAXKEYLEN`).
pub(crate) const MAX_KEY_LEN: usize = 80;

/// `struct __kernel_sockaddr_storage`: 128 octets, aligned like a pointer.
#[repr(C, align(8))]
struct SockaddrStorage([u8; 128]);

/// `struct tcp_md5sig` from `linux/tcp.h`.
#[repr(C)]
struct TcpMd5Sig {
    addr: SockaddrStorage,
    flags: u8,
    prefix_len: u8,
    key_len: u16,
    ifindex: i32,
    key: [u8; MAX_KEY_LEN],
}

/// Makes the kernel sign and check every segment to and from `peer` with `key`. Set before
/// `connect`, so the SYN is signed too.
pub(crate) fn set_key(socket: BorrowedFd<'_>, peer: SocketAddr, key: &[u8]) -> io::Result<()> {
    if key.is_empty() || key.len() > MAX_KEY_LEN {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("TCP MD5 key of {} octets: it must be 1 to {MAX_KEY_LEN}", key.len()),
        ));
    }
    let mut addr = [0u8; 128];
    // sockaddr_in / sockaddr_in6: family in host order, then the port (unused for matching)
    // and the address in network order.
    match peer {
        SocketAddr::V4(a) => {
            addr[..2].copy_from_slice(&(libc::AF_INET as u16).to_ne_bytes());
            addr[2..4].copy_from_slice(&a.port().to_be_bytes());
            addr[4..8].copy_from_slice(&a.ip().octets());
        }
        SocketAddr::V6(a) => {
            addr[..2].copy_from_slice(&(libc::AF_INET6 as u16).to_ne_bytes());
            addr[2..4].copy_from_slice(&a.port().to_be_bytes());
            addr[8..24].copy_from_slice(&a.ip().octets());
        }
    }
    let mut sig = TcpMd5Sig {
        addr: SockaddrStorage(addr),
        flags: 0,
        prefix_len: 0,
        key_len: key.len() as u16,
        ifindex: 0,
        key: [0; MAX_KEY_LEN],
    };
    sig.key[..key.len()].copy_from_slice(key);
    // SAFETY: `sig` is a live, initialised `struct tcp_md5sig` and the length passed is its
    // size; the kernel copies it in and keeps no pointer.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_MD5SIG,
            (&raw const sig).cast(),
            size_of::<TcpMd5Sig>() as libc::socklen_t,
        )
    };
    if rc == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_struct_has_the_kernel_layout() {
        // 128 (address) + 1 + 1 + 2 + 4 + 80 (key), as in linux/tcp.h.
        assert_eq!(size_of::<TcpMd5Sig>(), 216);
    }

    #[test]
    fn keys_out_of_range_are_refused_before_the_kernel() {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let fd = std::os::fd::AsFd::as_fd(&socket);
        let peer: SocketAddr = "192.0.2.1:179".parse().unwrap();
        for key in [&b""[..], &[b'k'; 81][..]] {
            let err = set_key(fd, peer, key).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        }
    }

    #[test]
    fn a_tcp_socket_takes_a_key() {
        let socket =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        let peer: SocketAddr = "192.0.2.1:179".parse().unwrap();
        match set_key(std::os::fd::AsFd::as_fd(&socket), peer, b"secret") {
            Ok(()) => {}
            // A kernel built without CONFIG_TCP_MD5SIG refuses the option.
            Err(e) if e.raw_os_error() == Some(libc::ENOPROTOOPT) => {
                println!("SKIPPED: the kernel has no TCP MD5 support");
            }
            Err(e) => panic!("{e}"),
        }
    }
}
