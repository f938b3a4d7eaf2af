//! Gossip datagrams: `[version][JSON envelope][HMAC-SHA256 of the two]`, the key ring and the
//! replay guard.
//!
//! The envelope adds to the membership [`Message`] the recipient's address, the sender's
//! life (a random number drawn at start), a per-life sequence number and the sender's
//! wall-clock time. The MAC proves the datagram comes from a holder of a key of the ring; the
//! recipient drops a recording replayed to another node, the time window drops recordings
//! replayed later, and the sequence window of the sender's life drops recordings replayed
//! within the time window. A restarted sender is a new life with a window of its own, so a
//! clock that went backwards across the restart cannot make its new sequence numbers look
//! like replays. JSON keeps captures readable in tcpdump; the messages are small and a few per
//! member per 200 ms.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::membership::Message;

/// Format version; a datagram with another first byte is dropped. 2: the envelope names its
/// recipient and the sender's life.
pub const VERSION: u8 = 2;
/// HMAC-SHA256 output length.
const MAC_LEN: usize = 32;
/// Shortest accepted key: 128 bits, the security level of the MAC against forgery. The
/// module's hooks generate 32 bytes.
pub const MIN_KEY_LEN: usize = 16;
/// Sequence numbers remembered per sender below the highest one seen: generous for UDP
/// reordering on a LAN, which is rare and shallow.
const SEQ_WINDOW: u64 = 64;

/// The shared key.
#[derive(Clone)]
pub struct Key(Vec<u8>);

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Key({} bytes)", self.0.len())
    }
}

/// Why a key was refused.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The file could not be read.
    #[error("cannot read the gossip key file {path}")]
    Read {
        /// The file.
        path: std::path::PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Too short to authenticate anything.
    #[error(
        "the gossip key has {len} bytes; at least {MIN_KEY_LEN} are required (the module's Secret holds 32 random bytes)"
    )]
    TooShort {
        /// Its length.
        len: usize,
    },
}

impl Key {
    /// A key from raw bytes.
    pub fn new(bytes: Vec<u8>) -> Result<Self, KeyError> {
        if bytes.len() < MIN_KEY_LEN {
            return Err(KeyError::TooShort { len: bytes.len() });
        }
        Ok(Self(bytes))
    }

    /// The raw bytes of a mounted Secret key (the kubelet decodes the base64 of `data`).
    pub fn from_file(path: &Path) -> Result<Self, KeyError> {
        let bytes = std::fs::read(path)
            .map_err(|source| KeyError::Read { path: path.to_owned(), source })?;
        Self::new(bytes)
    }

    fn mac(&self) -> Hmac<Sha256> {
        // HMAC accepts keys of any length; the error type exists only for fixed-size MACs.
        <Hmac<Sha256> as Mac>::new_from_slice(&self.0).unwrap_or_else(|_| unreachable!())
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        // Not secret-dependent timing that matters: only compared when reloading our own ring.
        self.0 == other.0
    }
}

impl Eq for Key {}

/// The keys in force: datagrams are sealed with the first and opened with any.
///
/// Rotation without a partition: add the new key beside the current one (every speaker then
/// accepts both), make it the current one (speakers send with it as their copy of the Secret
/// updates, and the others still accept it), then remove the old one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRing {
    keys: Vec<Key>,
}

impl KeyRing {
    /// A ring of one key.
    pub fn single(key: Key) -> Self {
        Self { keys: vec![key] }
    }

    /// A ring sending with `current` and also accepting `others`.
    pub fn new(current: Key, others: Vec<Key>) -> Self {
        let mut keys = vec![current];
        for key in others {
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
        Self { keys }
    }

    /// The ring of a key file: the file is the current key; every file beside it named
    /// `<its name>.<suffix>` (the Secret's other data keys, e.g. `key.previous`, `key.next`)
    /// is accepted too, in name order.
    pub fn from_file(path: &Path) -> Result<Self, KeyError> {
        let current = Key::from_file(path)?;
        let (Some(dir), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str()))
        else {
            return Ok(Self::single(current));
        };
        let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
        let prefix = format!("{name}.");
        let entries = std::fs::read_dir(dir)
            .map_err(|source| KeyError::Read { path: dir.to_owned(), source })?;
        let mut siblings: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.len() > prefix.len() && n.starts_with(&prefix))
            })
            .collect();
        siblings.sort();
        let others = siblings.iter().map(|p| Key::from_file(p)).collect::<Result<_, _>>()?;
        Ok(Self::new(current, others))
    }

    /// The key datagrams are sealed with.
    pub fn current(&self) -> &Key {
        &self.keys[0]
    }

    /// How many keys are accepted.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Never: a ring holds at least its current key.
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// Why a datagram was dropped (the `reason` label of `gossip_dropped_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drop {
    /// Shorter than a version byte and a MAC.
    Short,
    /// Unknown format version.
    Version,
    /// The MAC does not match: another key, corruption or forgery.
    BadMac,
    /// Authentic but not a valid envelope.
    Malformed,
    /// Timestamp outside the accepted window (replay of an old recording, or a badly skewed clock).
    Stale,
    /// Sequence number already seen or too old (replay within the window).
    Replay,
    /// Addressed to another node: a recording replayed elsewhere.
    Recipient,
}

impl Drop {
    /// Every reason, for metrics.
    pub const ALL: [Drop; 7] = [
        Drop::Short,
        Drop::Version,
        Drop::BadMac,
        Drop::Malformed,
        Drop::Stale,
        Drop::Replay,
        Drop::Recipient,
    ];

    /// Metric label.
    pub fn label(self) -> &'static str {
        match self {
            Drop::Short => "short",
            Drop::Version => "version",
            Drop::BadMac => "bad_mac",
            Drop::Malformed => "malformed",
            Drop::Stale => "stale",
            Drop::Replay => "replay",
            Drop::Recipient => "wrong_recipient",
        }
    }
}

/// What is authenticated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// Where the sender sent it: the recipient's gossip address.
    pub to: SocketAddr,
    /// The sender's life: drawn at random when it starts, so each run has its own sequence.
    pub life: u64,
    /// Per-life sequence number, strictly increasing.
    pub seq: u64,
    /// Sender's wall clock, milliseconds since the Unix epoch.
    pub time_ms: u64,
    /// The membership message.
    pub message: Message,
}

/// Encodes and authenticates an envelope with the ring's current key.
pub fn seal(ring: &KeyRing, envelope: &Envelope) -> Vec<u8> {
    let mut out = vec![VERSION];
    // Serializing plain structs with string keys into a Vec cannot fail.
    out.extend(serde_json::to_vec(envelope).unwrap_or_default());
    let mut mac = ring.current().mac();
    mac.update(&out);
    out.extend_from_slice(&mac.finalize().into_bytes());
    out
}

/// Checks the version and MAC (in constant time, against each key of the ring), decodes, and
/// checks that the datagram was sent to `local` (this node's gossip address; an unspecified
/// IP matches any IP with the same port).
pub fn open(ring: &KeyRing, local: SocketAddr, datagram: &[u8]) -> Result<Envelope, Drop> {
    if datagram.len() < 1 + MAC_LEN {
        return Err(Drop::Short);
    }
    if datagram[0] != VERSION {
        return Err(Drop::Version);
    }
    let (signed, tag) = datagram.split_at(datagram.len() - MAC_LEN);
    let authentic = ring.keys.iter().any(|key| {
        let mut mac = key.mac();
        mac.update(signed);
        mac.verify_slice(tag).is_ok()
    });
    if !authentic {
        return Err(Drop::BadMac);
    }
    let envelope: Envelope = serde_json::from_slice(&signed[1..]).map_err(|_| Drop::Malformed)?;
    let for_us =
        envelope.to == local || (local.ip().is_unspecified() && envelope.to.port() == local.port());
    if !for_us {
        return Err(Drop::Recipient);
    }
    Ok(envelope)
}

#[derive(Debug, Clone, Copy)]
struct Seen {
    highest: u64,
    /// Bit `i` set: `highest - i` was seen.
    bits: u64,
    /// Receiver's clock when the last datagram of this life was accepted.
    last_ms: u64,
}

/// Drops authentic datagrams outside the time window or seen before. Remembers one window
/// per sender life, and forgets a life not heard from for longer than the time window: any
/// recording of it is stale by then, so memory stays bounded by the senders of the last window.
#[derive(Debug)]
pub struct ReplayGuard {
    window_ms: u64,
    seen: HashMap<(String, u64), Seen>,
    next_prune_ms: u64,
}

impl ReplayGuard {
    /// Accepts timestamps within `window_ms` of the receiver's clock, either way.
    pub fn new(window_ms: u64) -> Self {
        Self { window_ms, seen: HashMap::new(), next_prune_ms: 0 }
    }

    /// Sender lives remembered.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// Whether no life is remembered.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    /// Whether to accept `envelope` at the receiver's `now_ms`; records it when accepted.
    pub fn check(&mut self, envelope: &Envelope, now_ms: u64) -> Result<(), Drop> {
        if envelope.time_ms.abs_diff(now_ms) > self.window_ms {
            return Err(Drop::Stale);
        }
        if now_ms >= self.next_prune_ms {
            let window = self.window_ms;
            self.seen.retain(|_, seen| now_ms.saturating_sub(seen.last_ms) <= window);
            self.next_prune_ms = now_ms.saturating_add(window);
        }
        let seq = envelope.seq;
        let life = (envelope.message.from.clone(), envelope.life);
        match self.seen.get_mut(&life) {
            None => {
                self.seen.insert(life, Seen { highest: seq, bits: 1, last_ms: now_ms });
            }
            Some(seen) if seq > seen.highest => {
                let shift = seq - seen.highest;
                seen.bits = if shift >= SEQ_WINDOW { 1 } else { (seen.bits << shift) | 1 };
                seen.highest = seq;
                seen.last_ms = now_ms;
            }
            Some(seen) => {
                let age = seen.highest - seq;
                if age >= SEQ_WINDOW || seen.bits & (1 << age) != 0 {
                    return Err(Drop::Replay);
                }
                seen.bits |= 1 << age;
                seen.last_ms = now_ms;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gossip::membership::Body;

    fn key(byte: u8) -> Key {
        Key::new(vec![byte; 32]).expect("long enough")
    }

    fn ring(byte: u8) -> KeyRing {
        KeyRing::single(key(byte))
    }

    fn local() -> SocketAddr {
        "198.51.100.1:4218".parse().expect("addr")
    }

    fn envelope(seq: u64, time_ms: u64) -> Envelope {
        lived(1, seq, time_ms)
    }

    fn lived(life: u64, seq: u64, time_ms: u64) -> Envelope {
        Envelope {
            to: local(),
            life,
            seq,
            time_ms,
            message: Message {
                from: "a".into(),
                incarnation: 7,
                body: Body::Ping { seq: 3 },
                updates: vec![],
            },
        }
    }

    #[test]
    fn round_trip_and_authentication() {
        let sealed = seal(&ring(1), &envelope(1, 1000));
        assert_eq!(open(&ring(1), local(), &sealed), Ok(envelope(1, 1000)));
        assert_eq!(open(&ring(2), local(), &sealed), Err(Drop::BadMac));
        let mut flipped = sealed.clone();
        flipped[5] ^= 1;
        assert_eq!(open(&ring(1), local(), &flipped), Err(Drop::BadMac));
        let mut other_version = sealed.clone();
        other_version[0] = 9;
        assert_eq!(open(&ring(1), local(), &other_version), Err(Drop::Version));
        assert_eq!(open(&ring(1), local(), &sealed[..20]), Err(Drop::Short));
        // Authentic garbage is malformed, not trusted.
        let mut garbage = vec![VERSION, b'{', b'}'];
        let mut mac = key(1).mac();
        mac.update(&garbage);
        garbage.extend_from_slice(&mac.finalize().into_bytes());
        assert_eq!(open(&ring(1), local(), &garbage), Err(Drop::Malformed));
    }

    #[test]
    fn a_datagram_replayed_to_another_node_is_dropped() {
        let sealed = seal(&ring(1), &envelope(1, 1000));
        let other: SocketAddr = "198.51.100.2:4218".parse().expect("addr");
        assert_eq!(open(&ring(1), other, &sealed), Err(Drop::Recipient));
        let wildcard: SocketAddr = "0.0.0.0:4218".parse().expect("addr");
        assert!(open(&ring(1), wildcard, &sealed).is_ok(), "a wildcard bind matches the port");
        let other_port: SocketAddr = "0.0.0.0:4219".parse().expect("addr");
        assert_eq!(open(&ring(1), other_port, &sealed), Err(Drop::Recipient));
    }

    #[test]
    fn a_ring_opens_with_any_key_and_seals_with_the_current() {
        let old_and_new = KeyRing::new(key(2), vec![key(1), key(2)]);
        assert_eq!(old_and_new.len(), 2, "duplicates dropped");
        let from_old = seal(&ring(1), &envelope(1, 1000));
        let from_new = seal(&ring(2), &envelope(2, 1000));
        assert!(open(&old_and_new, local(), &from_old).is_ok());
        assert!(open(&old_and_new, local(), &from_new).is_ok());
        let sealed = seal(&old_and_new, &envelope(3, 1000));
        assert!(open(&ring(2), local(), &sealed).is_ok(), "sealed with the current key");
        assert_eq!(open(&ring(1), local(), &sealed), Err(Drop::BadMac));
    }

    #[test]
    fn a_key_ring_is_the_key_file_and_its_suffixed_siblings() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("key");
        std::fs::write(&path, [2u8; 32]).expect("write");
        std::fs::write(dir.path().join("key.previous"), [1u8; 32]).expect("write");
        std::fs::write(dir.path().join("keyring"), [9u8; 32]).expect("write");
        std::fs::write(dir.path().join("key."), [8u8; 32]).expect("write");
        let ring = KeyRing::from_file(&path).expect("ring");
        assert_eq!(ring, KeyRing::new(key(2), vec![key(1)]));
        std::fs::write(dir.path().join("key.next"), [3u8; 4]).expect("write");
        assert!(matches!(KeyRing::from_file(&path), Err(KeyError::TooShort { len: 4 })));
    }

    #[test]
    fn a_new_life_is_not_a_replay_even_with_lower_sequence_numbers() {
        let mut guard = ReplayGuard::new(10_000);
        let now = 1_000_000;
        assert_eq!(guard.check(&lived(1, 5_000_000, now), now), Ok(()));
        // Restarted with its clock behind: a new life whose sequence starts lower.
        assert_eq!(guard.check(&lived(2, 1_000, now), now), Ok(()));
        assert_eq!(guard.check(&lived(2, 1_001, now), now), Ok(()));
        // A recording of the previous life is still checked against that life.
        assert_eq!(guard.check(&lived(1, 5_000_000, now), now), Err(Drop::Replay));
    }

    #[test]
    fn lives_not_heard_from_for_a_window_are_forgotten() {
        let mut guard = ReplayGuard::new(10_000);
        let now = 1_000_000;
        for life in 0..100 {
            assert_eq!(guard.check(&lived(life, 1, now), now), Ok(()));
        }
        assert_eq!(guard.len(), 100);
        let later = now + 10_001;
        assert_eq!(guard.check(&lived(500, 1, later), later), Ok(()));
        assert_eq!(guard.len(), 1, "only the life heard from in the last window");
    }

    #[test]
    fn keys_shorter_than_16_bytes_are_refused() {
        assert!(matches!(Key::new(vec![0; 15]), Err(KeyError::TooShort { len: 15 })));
        assert!(Key::new(vec![0; 16]).is_ok());
        let error = Key::from_file(Path::new("/nonexistent/key")).expect_err("no file");
        assert!(error.to_string().contains("/nonexistent/key"));
    }

    #[test]
    fn replays_and_stale_messages_are_dropped() {
        let mut guard = ReplayGuard::new(10_000);
        let now = 1_000_000;
        assert_eq!(guard.check(&envelope(100, now), now), Ok(()));
        assert_eq!(guard.check(&envelope(100, now), now), Err(Drop::Replay));
        // Reordered but new: accepted once.
        assert_eq!(guard.check(&envelope(102, now), now), Ok(()));
        assert_eq!(guard.check(&envelope(101, now), now), Ok(()));
        assert_eq!(guard.check(&envelope(101, now), now), Err(Drop::Replay));
        // Far behind the highest: cannot be told from a replay.
        assert_eq!(guard.check(&envelope(200, now), now), Ok(()));
        assert_eq!(guard.check(&envelope(130, now), now), Err(Drop::Replay));
        assert_eq!(guard.check(&envelope(300, now - 10_001), now), Err(Drop::Stale));
        assert_eq!(guard.check(&envelope(301, now + 10_001), now), Err(Drop::Stale));
    }
}
