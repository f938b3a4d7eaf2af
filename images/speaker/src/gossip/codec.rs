//! Gossip datagrams: `[version][JSON envelope][HMAC-SHA256 of the two]`, and the replay guard.
//!
//! The envelope adds to the membership [`Message`] a per-sender sequence number and the
//! sender's wall-clock time. The MAC proves the datagram comes from a holder of the module's
//! key; the time window drops recordings replayed later, and the sequence window drops
//! recordings replayed within the time window. JSON keeps captures readable in tcpdump; the
//! messages are small and a few per member per 200 ms.

use std::collections::HashMap;
use std::path::Path;

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::membership::Message;

/// Format version; a datagram with another first byte is dropped.
pub const VERSION: u8 = 1;
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
}

impl Drop {
    /// Every reason, for metrics.
    pub const ALL: [Drop; 6] =
        [Drop::Short, Drop::Version, Drop::BadMac, Drop::Malformed, Drop::Stale, Drop::Replay];

    /// Metric label.
    pub fn label(self) -> &'static str {
        match self {
            Drop::Short => "short",
            Drop::Version => "version",
            Drop::BadMac => "bad_mac",
            Drop::Malformed => "malformed",
            Drop::Stale => "stale",
            Drop::Replay => "replay",
        }
    }
}

/// What is authenticated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// Per-sender sequence number, strictly increasing.
    pub seq: u64,
    /// Sender's wall clock, milliseconds since the Unix epoch.
    pub time_ms: u64,
    /// The membership message.
    pub message: Message,
}

/// Encodes and authenticates an envelope.
pub fn seal(key: &Key, envelope: &Envelope) -> Vec<u8> {
    let mut out = vec![VERSION];
    // Serializing plain structs with string keys into a Vec cannot fail.
    out.extend(serde_json::to_vec(envelope).unwrap_or_default());
    let mut mac = key.mac();
    mac.update(&out);
    out.extend_from_slice(&mac.finalize().into_bytes());
    out
}

/// Checks the version and MAC (in constant time) and decodes.
pub fn open(key: &Key, datagram: &[u8]) -> Result<Envelope, Drop> {
    if datagram.len() < 1 + MAC_LEN {
        return Err(Drop::Short);
    }
    if datagram[0] != VERSION {
        return Err(Drop::Version);
    }
    let (signed, tag) = datagram.split_at(datagram.len() - MAC_LEN);
    let mut mac = key.mac();
    mac.update(signed);
    mac.verify_slice(tag).map_err(|_| Drop::BadMac)?;
    serde_json::from_slice(&signed[1..]).map_err(|_| Drop::Malformed)
}

#[derive(Debug, Clone, Copy)]
struct Seen {
    highest: u64,
    /// Bit `i` set: `highest - i` was seen.
    bits: u64,
}

/// Drops authentic datagrams outside the time window or seen before.
#[derive(Debug)]
pub struct ReplayGuard {
    window_ms: u64,
    seen: HashMap<String, Seen>,
}

impl ReplayGuard {
    /// Accepts timestamps within `window_ms` of the receiver's clock, either way.
    pub fn new(window_ms: u64) -> Self {
        Self { window_ms, seen: HashMap::new() }
    }

    /// Whether to accept `envelope` at the receiver's `now_ms`; records it when accepted.
    pub fn check(&mut self, envelope: &Envelope, now_ms: u64) -> Result<(), Drop> {
        if envelope.time_ms.abs_diff(now_ms) > self.window_ms {
            return Err(Drop::Stale);
        }
        let seq = envelope.seq;
        match self.seen.get_mut(&envelope.message.from) {
            None => {
                self.seen.insert(envelope.message.from.clone(), Seen { highest: seq, bits: 1 });
            }
            Some(seen) if seq > seen.highest => {
                let shift = seq - seen.highest;
                seen.bits = if shift >= SEQ_WINDOW { 1 } else { (seen.bits << shift) | 1 };
                seen.highest = seq;
            }
            Some(seen) => {
                let age = seen.highest - seq;
                if age >= SEQ_WINDOW || seen.bits & (1 << age) != 0 {
                    return Err(Drop::Replay);
                }
                seen.bits |= 1 << age;
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

    fn envelope(seq: u64, time_ms: u64) -> Envelope {
        Envelope {
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
        let sealed = seal(&key(1), &envelope(1, 1000));
        assert_eq!(open(&key(1), &sealed), Ok(envelope(1, 1000)));
        assert_eq!(open(&key(2), &sealed), Err(Drop::BadMac));
        let mut flipped = sealed.clone();
        flipped[5] ^= 1;
        assert_eq!(open(&key(1), &flipped), Err(Drop::BadMac));
        let mut other_version = sealed.clone();
        other_version[0] = 9;
        assert_eq!(open(&key(1), &other_version), Err(Drop::Version));
        assert_eq!(open(&key(1), &sealed[..20]), Err(Drop::Short));
        // Authentic garbage is malformed, not trusted.
        let mut garbage = vec![VERSION, b'{', b'}'];
        let mut mac = key(1).mac();
        mac.update(&garbage);
        garbage.extend_from_slice(&mac.finalize().into_bytes());
        assert_eq!(open(&key(1), &garbage), Err(Drop::Malformed));
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
