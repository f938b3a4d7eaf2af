//! `xtask bench-probe`: the client of the neighbour benchmarks, run inside the client
//! namespace (`ip netns exec <ns> xtask bench-probe ...`) on an AF_PACKET socket, printing
//! JSON on stdout.
//!
//! ```text
//!  latency  alternate ARP requests / neighbour solicitations to several targets, one at a
//!           time; per target the round-trip times and the losses
//!  rate     requests to one target paced at R per second for a while; sent and answered
//!  watch    prints `ready`, then the arrival time (Unix ns) of the first ARP frame whose
//!           sender is IP + MAC: a gratuitous ARP of the node taking the IP over
//! ```
//!
//! Requests carry the client's own addresses, so the answers come back to the client's MAC
//! as they would to any host; the prober only reads them before the client kernel does.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use pnet_base::MacAddr;
use pnet_datalink::{Channel, DataLinkReceiver, DataLinkSender};
use pnet_packet::Packet;
use pnet_packet::arp::{ArpHardwareTypes, ArpOperations, ArpPacket, MutableArpPacket};
use pnet_packet::ethernet::{EtherTypes, EthernetPacket, MutableEthernetPacket};
use pnet_packet::icmpv6::{self, Icmpv6Packet, Icmpv6Types, MutableIcmpv6Packet};
use pnet_packet::ip::IpNextHeaderProtocols;
use pnet_packet::ipv6::{Ipv6Packet, MutableIpv6Packet};
use serde::{Deserialize, Serialize};

/// Ethernet II header length.
const ETHERNET: usize = 14;
/// ARP body for Ethernet/IPv4 (RFC 826).
const ARP: usize = 28;
/// Fixed IPv6 header.
const IPV6: usize = 40;
/// Neighbour solicitation: type, code, checksum, reserved, target (RFC 4861 §4.3) plus one
/// source link-layer address option of 8 bytes (§4.6.1).
const NS: usize = 24 + 8;
/// RFC 4861 §7.1: ND messages must carry hop limit 255 or the receiver drops them.
const ND_HOP_LIMIT: u8 = 255;
/// ICMPv6 type of a neighbour advertisement (RFC 4861 §4.4).
const NEIGHBOR_ADVERT: u8 = 136;
/// How long one receive blocks, so loops notice their deadlines.
const READ_TIMEOUT: Duration = Duration::from_millis(5);

/// What the prober does.
#[derive(Clone, Debug, clap::Subcommand)]
pub enum Mode {
    /// One request at a time, alternating over the targets; round-trip times per target.
    Latency {
        #[command(flatten)]
        link: LinkArgs,
        /// Addresses to ask for (IPv4: ARP, IPv6: neighbour solicitation), in turn.
        #[arg(long = "target", required = true)]
        targets: Vec<IpAddr>,
        /// Requests per target.
        #[arg(long)]
        count: usize,
        /// A request unanswered after this long is lost.
        #[arg(long, default_value_t = 100)]
        timeout_ms: u64,
    },
    /// Requests to one target at a fixed rate; how many were answered.
    Rate {
        #[command(flatten)]
        link: LinkArgs,
        #[arg(long)]
        target: IpAddr,
        /// Requests per second.
        #[arg(long)]
        rate: u32,
        #[arg(long)]
        duration_ms: u64,
        /// How long answers are still counted after the last request.
        #[arg(long, default_value_t = 200)]
        grace_ms: u64,
    },
    /// Waits for an ARP frame from `ip` with sender MAC `mac`; prints its arrival time.
    Watch {
        #[arg(long)]
        iface: String,
        #[arg(long)]
        ip: Ipv4Addr,
        #[arg(long)]
        mac: MacAddr,
        #[arg(long)]
        timeout_ms: u64,
    },
}

/// The client's interface and addresses.
#[derive(Clone, Debug, clap::Args)]
pub struct LinkArgs {
    #[arg(long)]
    iface: String,
    /// Sender address of ARP requests.
    #[arg(long)]
    src4: Ipv4Addr,
    /// Source address of neighbour solicitations.
    #[arg(long)]
    src6: Ipv6Addr,
}

/// Round trips to one target.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TargetRtts {
    /// The address asked for.
    pub ip: IpAddr,
    /// Round-trip time of every answered request, microseconds.
    pub rtt_us: Vec<f64>,
    /// Requests without an answer within the timeout.
    pub lost: usize,
}

/// Output of `latency`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct LatencyOutput {
    /// Per target, in the order given.
    pub targets: Vec<TargetRtts>,
}

/// Output of `rate`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RateOutput {
    /// Requests sent.
    pub sent: u64,
    /// Answers received.
    pub answered: u64,
    /// Seconds the sending took (longer than asked when the prober could not keep up).
    pub send_seconds: f64,
}

/// Output of `watch`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct WatchOutput {
    /// Arrival of the awaited frame, nanoseconds since the Unix epoch.
    pub arrival_unix_ns: u128,
}

/// Runs one mode, printing its JSON result.
pub fn run(mode: &Mode) -> Result<()> {
    let json = match mode {
        Mode::Latency { link, targets, count, timeout_ms } => serde_json::to_string(&latency(
            link,
            targets,
            *count,
            Duration::from_millis(*timeout_ms),
        )?)?,
        Mode::Rate { link, target, rate: per_second, duration_ms, grace_ms } => {
            serde_json::to_string(&rate(
                link,
                *target,
                *per_second,
                Duration::from_millis(*duration_ms),
                Duration::from_millis(*grace_ms),
            )?)?
        }
        Mode::Watch { iface, ip, mac, timeout_ms } => {
            serde_json::to_string(&watch(iface, *ip, *mac, Duration::from_millis(*timeout_ms))?)?
        }
    };
    println!("{json}");
    Ok(())
}

struct Link {
    mac: MacAddr,
    tx: Box<dyn DataLinkSender>,
    rx: Box<dyn DataLinkReceiver>,
}

fn open(iface: &str) -> Result<Link> {
    let device = pnet_datalink::interfaces()
        .into_iter()
        .find(|i| i.name == iface)
        .with_context(|| format!("no interface {iface}"))?;
    let mac = device.mac.with_context(|| format!("{iface} has no MAC"))?;
    let config = pnet_datalink::Config {
        read_timeout: Some(READ_TIMEOUT),
        // Room for a burst of answers at the highest rates stepped through.
        read_buffer_size: 1 << 16,
        ..Default::default()
    };
    match pnet_datalink::channel(&device, config).with_context(|| format!("open {iface}"))? {
        Channel::Ethernet(tx, rx) => Ok(Link { mac, tx, rx }),
        _ => bail!("{iface}: not an Ethernet channel"),
    }
}

/// The request for `target` from `mac`, with the client's addresses.
fn request(mac: MacAddr, link: &LinkArgs, target: IpAddr) -> Vec<u8> {
    match target {
        IpAddr::V4(t) => arp_request(mac, link.src4, t),
        IpAddr::V6(t) => neighbor_solicitation(mac, link.src6, t),
    }
}

/// A broadcast ARP request "who has `target`, tell `src`".
pub fn arp_request(mac: MacAddr, src: Ipv4Addr, target: Ipv4Addr) -> Vec<u8> {
    let mut frame = vec![0u8; ETHERNET + ARP];
    let mut eth = MutableEthernetPacket::new(&mut frame).expect("sized for Ethernet");
    eth.set_destination(MacAddr::broadcast());
    eth.set_source(mac);
    eth.set_ethertype(EtherTypes::Arp);
    let mut arp = MutableArpPacket::new(&mut frame[ETHERNET..]).expect("sized for ARP");
    arp.set_hardware_type(ArpHardwareTypes::Ethernet);
    arp.set_protocol_type(EtherTypes::Ipv4);
    arp.set_hw_addr_len(6);
    arp.set_proto_addr_len(4);
    arp.set_operation(ArpOperations::Request);
    arp.set_sender_hw_addr(mac);
    arp.set_sender_proto_addr(src);
    arp.set_target_hw_addr(MacAddr::zero());
    arp.set_target_proto_addr(target);
    frame
}

/// A neighbour solicitation for `target` to its solicited-node multicast group
/// (RFC 4291 §2.7.1: ff02::1:ff00:0/104 + the low 24 bits), with our link-layer address.
pub fn neighbor_solicitation(mac: MacAddr, src: Ipv6Addr, target: Ipv6Addr) -> Vec<u8> {
    let t = target.octets();
    let group = Ipv6Addr::new(
        0xff02,
        0,
        0,
        0,
        0,
        1,
        0xff00 | u16::from(t[13]),
        u16::from_be_bytes([t[14], t[15]]),
    );
    let mut frame = vec![0u8; ETHERNET + IPV6 + NS];
    let mut eth = MutableEthernetPacket::new(&mut frame).expect("sized for Ethernet");
    // RFC 2464 §7: IPv6 multicast maps to 33:33 + the low 32 bits of the group.
    eth.set_destination(MacAddr(0x33, 0x33, 0xff, t[13], t[14], t[15]));
    eth.set_source(mac);
    eth.set_ethertype(EtherTypes::Ipv6);
    let mut ip = MutableIpv6Packet::new(&mut frame[ETHERNET..]).expect("sized for IPv6");
    ip.set_version(6);
    ip.set_payload_length(NS as u16);
    ip.set_next_header(IpNextHeaderProtocols::Icmpv6);
    ip.set_hop_limit(ND_HOP_LIMIT);
    ip.set_source(src);
    ip.set_destination(group);
    let body = &mut frame[ETHERNET + IPV6..];
    body[0] = 135; // neighbour solicitation
    body[8..24].copy_from_slice(&t);
    body[24] = 1; // source link-layer address option, length 1 (× 8 bytes)
    body[25] = 1;
    body[26..32].copy_from_slice(&mac.octets());
    let mut icmp = MutableIcmpv6Packet::new(body).expect("sized for ICMPv6");
    let sum = icmpv6::checksum(&icmp.to_immutable(), &src, &group);
    icmp.set_checksum(sum);
    frame
}

/// An ARP frame as the prober reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArpSeen {
    /// Request or reply.
    pub reply: bool,
    /// Sender MAC.
    pub sender_mac: MacAddr,
    /// Sender IP.
    pub sender_ip: Ipv4Addr,
}

/// The ARP frame in `frame`, if it is one.
pub fn parse_arp(frame: &[u8]) -> Option<ArpSeen> {
    let eth = EthernetPacket::new(frame)?;
    if eth.get_ethertype() != EtherTypes::Arp {
        return None;
    }
    let arp = ArpPacket::new(eth.payload())?;
    Some(ArpSeen {
        reply: arp.get_operation() == ArpOperations::Reply,
        sender_mac: arp.get_sender_hw_addr(),
        sender_ip: arp.get_sender_proto_addr(),
    })
}

/// The target of the neighbour advertisement in `frame`, if it is one.
pub fn parse_advert(frame: &[u8]) -> Option<Ipv6Addr> {
    let eth = EthernetPacket::new(frame)?;
    if eth.get_ethertype() != EtherTypes::Ipv6 {
        return None;
    }
    let ip = Ipv6Packet::new(eth.payload())?;
    if ip.get_next_header() != IpNextHeaderProtocols::Icmpv6 {
        return None;
    }
    let icmp = Icmpv6Packet::new(ip.payload())?;
    if icmp.get_icmpv6_type() != Icmpv6Types::NeighborAdvert {
        return None;
    }
    let body = ip.payload();
    let target: [u8; 16] = body.get(8..24)?.try_into().ok()?;
    (body[0] == NEIGHBOR_ADVERT).then(|| Ipv6Addr::from(target))
}

/// Whether `frame`, not sent by us, answers a request for `target`.
fn answers(frame: &[u8], own: MacAddr, target: IpAddr) -> bool {
    let from_us = EthernetPacket::new(frame).is_none_or(|e| e.get_source() == own);
    !from_us
        && match target {
            IpAddr::V4(t) => parse_arp(frame).is_some_and(|a| a.reply && a.sender_ip == t),
            IpAddr::V6(t) => parse_advert(frame) == Some(t),
        }
}

fn send(tx: &mut dyn DataLinkSender, frame: &[u8]) -> Result<()> {
    match tx.send_to(frame, None) {
        Some(result) => Ok(result?),
        None => bail!("frame larger than the send buffer"),
    }
}

fn latency(
    args: &LinkArgs,
    targets: &[IpAddr],
    count: usize,
    timeout: Duration,
) -> Result<LatencyOutput> {
    let mut link = open(&args.iface)?;
    let frames: Vec<Vec<u8>> = targets.iter().map(|t| request(link.mac, args, *t)).collect();
    let mut out = LatencyOutput {
        targets: targets
            .iter()
            .map(|ip| TargetRtts { ip: *ip, rtt_us: Vec::new(), lost: 0 })
            .collect(),
    };
    for _ in 0..count {
        for (i, target) in targets.iter().enumerate() {
            let sent = Instant::now();
            send(link.tx.as_mut(), &frames[i])?;
            let answered = loop {
                if sent.elapsed() >= timeout {
                    break None;
                }
                match link.rx.next() {
                    Ok(frame) if answers(frame, link.mac, *target) => break Some(sent.elapsed()),
                    Ok(_) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                    Err(e) => return Err(e.into()),
                }
            };
            match answered {
                Some(rtt) => out.targets[i].rtt_us.push(rtt.as_secs_f64() * 1e6),
                None => out.targets[i].lost += 1,
            }
        }
    }
    Ok(out)
}

fn rate(
    args: &LinkArgs,
    target: IpAddr,
    per_second: u32,
    duration: Duration,
    grace: Duration,
) -> Result<RateOutput> {
    let Link { mac, mut tx, mut rx } = open(&args.iface)?;
    let frame = request(mac, args, target);
    let total = (f64::from(per_second) * duration.as_secs_f64()).round() as u64;
    let (stop, answered) = (AtomicBool::new(false), AtomicU64::new(0));
    let (sent, send_seconds) = std::thread::scope(|scope| -> Result<(u64, f64)> {
        let receiver = scope.spawn(|| -> Result<()> {
            while !stop.load(Ordering::Relaxed) {
                match rx.next() {
                    Ok(f) if answers(f, mac, target) => {
                        answered.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(_) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                    Err(e) => return Err(e.into()),
                }
            }
            Ok(())
        });
        let start = Instant::now();
        let mut sent = 0;
        let result = (|| -> Result<()> {
            while sent < total {
                let due = start + duration.mul_f64(sent as f64 / total as f64);
                let now = Instant::now();
                if due > now {
                    // Sleeping below ~100 µs overshoots; spinning that long is cheaper.
                    let gap = due - now;
                    if gap > Duration::from_micros(100) {
                        std::thread::sleep(gap);
                    } else {
                        std::hint::spin_loop();
                        continue;
                    }
                }
                send(tx.as_mut(), &frame)?;
                sent += 1;
            }
            Ok(())
        })();
        let send_seconds = start.elapsed().as_secs_f64();
        std::thread::sleep(grace);
        stop.store(true, Ordering::Relaxed);
        let received = receiver.join().map_err(|_| anyhow::anyhow!("receiver panicked"))?;
        result.and(received)?;
        Ok((sent, send_seconds))
    })?;
    Ok(RateOutput { sent, answered: answered.load(Ordering::Relaxed), send_seconds })
}

fn watch(iface: &str, ip: Ipv4Addr, mac: MacAddr, timeout: Duration) -> Result<WatchOutput> {
    let mut link = open(iface)?;
    // The socket is open: from now on the frame cannot be missed.
    println!("ready");
    let start = Instant::now();
    while start.elapsed() < timeout {
        match link.rx.next() {
            Ok(frame) => {
                if parse_arp(frame).is_some_and(|a| a.sender_ip == ip && a.sender_mac == mac) {
                    let arrival = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos();
                    return Ok(WatchOutput { arrival_unix_ns: arrival });
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(e) => return Err(e.into()),
        }
    }
    bail!("no ARP frame from {ip} at {mac} within {timeout:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: MacAddr = MacAddr(0x02, 0, 0, 0, 0, 1);

    #[test]
    fn arp_request_round_trips() {
        let f = arp_request(MAC, "192.0.2.1".parse().unwrap(), "192.0.2.10".parse().unwrap());
        assert_eq!(f.len(), 42);
        let seen = parse_arp(&f).unwrap();
        assert_eq!((seen.reply, seen.sender_mac), (false, MAC));
        assert_eq!(seen.sender_ip, "192.0.2.1".parse::<Ipv4Addr>().unwrap());
        assert!(!answers(&f, MAC, "192.0.2.1".parse().unwrap()), "our own frame");
    }

    #[test]
    fn solicitation_goes_to_the_solicited_node_group_with_a_valid_checksum() {
        let target: Ipv6Addr = "2001:db8::1:2:abcd".parse().unwrap();
        let f = neighbor_solicitation(MAC, "2001:db8::1".parse().unwrap(), target);
        assert_eq!(f.len(), ETHERNET + IPV6 + NS);
        assert_eq!(&f[..6], &[0x33, 0x33, 0xff, 0x02, 0xab, 0xcd]);
        let ip = Ipv6Packet::new(&f[ETHERNET..]).unwrap();
        assert_eq!(ip.get_destination(), "ff02::1:ff02:abcd".parse::<Ipv6Addr>().unwrap());
        let icmp = Icmpv6Packet::new(ip.payload()).unwrap();
        let sum = icmpv6::checksum(&icmp, &ip.get_source(), &ip.get_destination());
        assert_eq!(icmp.get_checksum(), sum);
        assert_eq!(icmp.get_icmpv6_type(), Icmpv6Types::NeighborSolicit);
    }
}
