//! The BFD Control packet (RFC 5880 §4.1) and the reception checks that need no session
//! (§6.8.6, the part before a session is selected).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |Vers |  Diag   |Sta|P|F|C|A|D|M|  Detect Mult  |    Length     |
//! |                       My Discriminator                        |
//! |                      Your Discriminator                       |
//! |                    Desired Min TX Interval                    |
//! |                   Required Min RX Interval                    |
//! |                 Required Min Echo RX Interval                 |
//! |   Auth Type   |   Auth Len    |    Authentication Data...     |   (only if A is set)
//! ```
//!
//! Decoding is total: any byte string gives a packet or a [`DecodeError`] naming the rule it
//! broke, never a panic. The authentication section is parsed only far enough to check its
//! length; this implementation configures no authentication, so a session rejects a packet that
//! carries one (see [`crate::session::Rejected::UnexpectedAuthentication`]).

use std::time::Duration;

/// The protocol version this implementation speaks (§4.1 "Version").
pub const VERSION: u8 = 1;
/// Length of the mandatory section (§4.1): six 32-bit words.
pub const MANDATORY_LEN: usize = 24;
/// The smallest authentication section: Auth Type and Auth Len (§6.8.6: the Length field is at
/// least 26 when the A bit is set).
const MIN_AUTH_LEN: usize = 2;

/// Session state as carried in the `Sta` field (§4.1) and kept by a session (§6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum State {
    /// Held down by configuration; the peer must not treat it as a failure (§6.8.16).
    AdminDown,
    /// No working session (the initial state).
    Down,
    /// The peer was heard, but it has not said it hears us yet.
    Init,
    /// Both sides hear each other.
    Up,
}

impl State {
    fn from_bits(bits: u8) -> Self {
        match bits & 0b11 {
            0 => State::AdminDown,
            1 => State::Down,
            2 => State::Init,
            _ => State::Up,
        }
    }

    fn bits(self) -> u8 {
        match self {
            State::AdminDown => 0,
            State::Down => 1,
            State::Init => 2,
            State::Up => 3,
        }
    }

    /// A stable name for logs and metrics.
    pub fn label(self) -> &'static str {
        match self {
            State::AdminDown => "AdminDown",
            State::Down => "Down",
            State::Init => "Init",
            State::Up => "Up",
        }
    }
}

/// Why a session last went down: the `Diag` field (§4.1). Values 9–31 are reserved; they are
/// kept as [`Diag::Reserved`] so that a packet decodes and encodes back to the same bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Diag {
    /// 0: no diagnostic.
    None,
    /// 1: the detection time expired without a packet from the peer.
    ControlDetectionTimeExpired,
    /// 2: the echo function failed.
    EchoFunctionFailed,
    /// 3: the peer said its session is down.
    NeighborSignaledSessionDown,
    /// 4: the forwarding plane was reset.
    ForwardingPlaneReset,
    /// 5: the path is down.
    PathDown,
    /// 6: a concatenated path is down.
    ConcatenatedPathDown,
    /// 7: administratively down.
    AdministrativelyDown,
    /// 8: a reverse concatenated path is down.
    ReverseConcatenatedPathDown,
    /// 9–31: reserved for future use.
    Reserved(u8),
}

impl Diag {
    fn from_bits(bits: u8) -> Self {
        match bits & 0b1_1111 {
            0 => Diag::None,
            1 => Diag::ControlDetectionTimeExpired,
            2 => Diag::EchoFunctionFailed,
            3 => Diag::NeighborSignaledSessionDown,
            4 => Diag::ForwardingPlaneReset,
            5 => Diag::PathDown,
            6 => Diag::ConcatenatedPathDown,
            7 => Diag::AdministrativelyDown,
            8 => Diag::ReverseConcatenatedPathDown,
            other => Diag::Reserved(other),
        }
    }

    fn bits(self) -> u8 {
        match self {
            Diag::None => 0,
            Diag::ControlDetectionTimeExpired => 1,
            Diag::EchoFunctionFailed => 2,
            Diag::NeighborSignaledSessionDown => 3,
            Diag::ForwardingPlaneReset => 4,
            Diag::PathDown => 5,
            Diag::ConcatenatedPathDown => 6,
            Diag::AdministrativelyDown => 7,
            Diag::ReverseConcatenatedPathDown => 8,
            Diag::Reserved(bits) => bits & 0b1_1111,
        }
    }

    /// A stable name for logs and metrics.
    pub fn label(self) -> &'static str {
        match self {
            Diag::None => "none",
            Diag::ControlDetectionTimeExpired => "control_detection_time_expired",
            Diag::EchoFunctionFailed => "echo_function_failed",
            Diag::NeighborSignaledSessionDown => "neighbor_signaled_session_down",
            Diag::ForwardingPlaneReset => "forwarding_plane_reset",
            Diag::PathDown => "path_down",
            Diag::ConcatenatedPathDown => "concatenated_path_down",
            Diag::AdministrativelyDown => "administratively_down",
            Diag::ReverseConcatenatedPathDown => "reverse_concatenated_path_down",
            Diag::Reserved(_) => "reserved",
        }
    }
}

/// The optional authentication section, kept raw: this implementation checks only its framing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Auth {
    /// Auth Type (§4.1: 1 simple password, 2/3 keyed MD5, 4/5 keyed SHA1).
    pub auth_type: u8,
    /// Everything after Auth Type and Auth Len.
    pub data: Vec<u8>,
}

/// A decoded BFD Control packet. Intervals are microseconds on the wire and [`Duration`]s here;
/// encoding saturates at `u32::MAX` microseconds (about 71 minutes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    /// Diag: the sender's reason for its last session change.
    pub diag: Diag,
    /// Sta: the sender's session state.
    pub state: State,
    /// P: the sender asks for a Final (a Poll Sequence, §6.5).
    pub poll: bool,
    /// F: the answer to a Poll.
    pub final_: bool,
    /// C: the sender's BFD is independent of its control plane.
    pub control_plane_independent: bool,
    /// D: the sender wishes to run Demand mode.
    pub demand: bool,
    /// Detect Mult: the sender's detection time multiplier; never 0 in a valid packet.
    pub detect_mult: u8,
    /// My Discriminator: the sender's session id; never 0 in a valid packet.
    pub my_discriminator: u32,
    /// Your Discriminator: the receiver's session id as the sender knows it, 0 if unknown.
    pub your_discriminator: u32,
    /// Desired Min TX Interval: how often the sender would like to send.
    pub desired_min_tx: Duration,
    /// Required Min RX Interval: how often the sender accepts packets; 0 = send none.
    pub required_min_rx: Duration,
    /// Required Min Echo RX Interval; 0 = no echo packets.
    pub required_min_echo_rx: Duration,
    /// The authentication section, present exactly when the A bit is set.
    pub auth: Option<Auth>,
}

/// Why bytes are not a valid BFD Control packet (§6.8.6 "discard" rules). Every variant is
/// counted by the driver under its [`DecodeError::label`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, thiserror::Error)]
pub enum DecodeError {
    /// Fewer bytes than the mandatory section.
    #[error("packet of {0} bytes is shorter than the 24-byte mandatory section")]
    Truncated(usize),
    /// The version is not 1.
    #[error("unsupported version {0}")]
    Version(u8),
    /// The Length field is below the minimum (24, or 26 with authentication).
    #[error("length field {0} is below the minimum")]
    LengthTooSmall(u8),
    /// The Length field is larger than the datagram.
    #[error("length field {field} exceeds the {payload}-byte payload")]
    LengthExceedsPayload {
        /// The Length field.
        field: u8,
        /// The datagram's size.
        payload: usize,
    },
    /// The authentication section's length does not fit the packet.
    #[error("authentication section length {0} does not match the packet length")]
    AuthLength(u8),
    /// Detect Mult is zero.
    #[error("detect multiplier is zero")]
    ZeroDetectMult,
    /// The Multipoint bit is set (reserved for point-to-multipoint, RFC 5880 §4.1).
    #[error("multipoint bit is set")]
    Multipoint,
    /// My Discriminator is zero.
    #[error("my discriminator is zero")]
    ZeroMyDiscriminator,
    /// Your Discriminator is zero while the state is Init or Up.
    #[error("your discriminator is zero in state {0:?}")]
    ZeroYourDiscriminator(State),
}

impl DecodeError {
    /// A stable name for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            DecodeError::Truncated(_) => "truncated",
            DecodeError::Version(_) => "version",
            DecodeError::LengthTooSmall(_) => "length_too_small",
            DecodeError::LengthExceedsPayload { .. } => "length_exceeds_payload",
            DecodeError::AuthLength(_) => "auth_length",
            DecodeError::ZeroDetectMult => "zero_detect_mult",
            DecodeError::Multipoint => "multipoint",
            DecodeError::ZeroMyDiscriminator => "zero_my_discriminator",
            DecodeError::ZeroYourDiscriminator(_) => "zero_your_discriminator",
        }
    }
}

// Flag bits of the second byte (§4.1).
const FLAG_POLL: u8 = 0b0010_0000;
const FLAG_FINAL: u8 = 0b0001_0000;
const FLAG_CPI: u8 = 0b0000_1000;
const FLAG_AUTH: u8 = 0b0000_0100;
const FLAG_DEMAND: u8 = 0b0000_0010;
const FLAG_MULTIPOINT: u8 = 0b0000_0001;

fn word(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

fn micros(value: u32) -> Duration {
    Duration::from_micros(u64::from(value))
}

fn to_micros(value: Duration) -> u32 {
    u32::try_from(value.as_micros()).unwrap_or(u32::MAX)
}

impl Packet {
    /// Decodes a datagram's payload, applying every §6.8.6 check that needs no session. Bytes
    /// beyond the Length field are ignored (the RFC only forbids a Length beyond the payload).
    pub fn decode(bytes: &[u8]) -> Result<Packet, DecodeError> {
        if bytes.len() < MANDATORY_LEN {
            return Err(DecodeError::Truncated(bytes.len()));
        }
        let version = bytes[0] >> 5;
        if version != VERSION {
            return Err(DecodeError::Version(version));
        }
        let flags = bytes[1];
        let has_auth = flags & FLAG_AUTH != 0;
        let length = bytes[3];
        let min = MANDATORY_LEN + if has_auth { MIN_AUTH_LEN } else { 0 };
        if usize::from(length) < min {
            return Err(DecodeError::LengthTooSmall(length));
        }
        if usize::from(length) > bytes.len() {
            return Err(DecodeError::LengthExceedsPayload { field: length, payload: bytes.len() });
        }
        let packet_bytes = &bytes[..usize::from(length)];
        let auth = if has_auth {
            let section = &packet_bytes[MANDATORY_LEN..];
            // Auth Len counts the whole section, Auth Type and Auth Len included (§4.2).
            let auth_len = section[1];
            if usize::from(auth_len) != section.len() || usize::from(auth_len) < MIN_AUTH_LEN {
                return Err(DecodeError::AuthLength(auth_len));
            }
            Some(Auth { auth_type: section[0], data: section[MIN_AUTH_LEN..].to_vec() })
        } else {
            // A longer Length without authentication is allowed (§6.8.6 sets only a minimum);
            // whatever follows the mandatory section is not ours to interpret.
            None
        };
        let detect_mult = bytes[2];
        if detect_mult == 0 {
            return Err(DecodeError::ZeroDetectMult);
        }
        if flags & FLAG_MULTIPOINT != 0 {
            return Err(DecodeError::Multipoint);
        }
        let my_discriminator = word(bytes, 4);
        if my_discriminator == 0 {
            return Err(DecodeError::ZeroMyDiscriminator);
        }
        let state = State::from_bits(flags >> 6);
        let your_discriminator = word(bytes, 8);
        if your_discriminator == 0 && matches!(state, State::Init | State::Up) {
            return Err(DecodeError::ZeroYourDiscriminator(state));
        }
        Ok(Packet {
            diag: Diag::from_bits(bytes[0]),
            state,
            poll: flags & FLAG_POLL != 0,
            final_: flags & FLAG_FINAL != 0,
            control_plane_independent: flags & FLAG_CPI != 0,
            demand: flags & FLAG_DEMAND != 0,
            detect_mult,
            my_discriminator,
            your_discriminator,
            desired_min_tx: micros(word(bytes, 12)),
            required_min_rx: micros(word(bytes, 16)),
            required_min_echo_rx: micros(word(bytes, 20)),
            auth,
        })
    }

    /// Encodes the packet; the Length field is computed. An authentication section longer than
    /// the 8-bit length fields allow is truncated to fit (this implementation never sends one).
    pub fn encode(&self) -> Vec<u8> {
        let auth_data = self.auth.as_ref().map(|a| {
            let max = usize::from(u8::MAX) - MANDATORY_LEN - MIN_AUTH_LEN;
            &a.data[..a.data.len().min(max)]
        });
        let auth_len = auth_data.map_or(0, |d| d.len() + MIN_AUTH_LEN);
        let length = MANDATORY_LEN + auth_len;
        let mut out = Vec::with_capacity(length);
        out.push((VERSION << 5) | self.diag.bits());
        let mut flags = self.state.bits() << 6;
        for (set, bit) in [
            (self.poll, FLAG_POLL),
            (self.final_, FLAG_FINAL),
            (self.control_plane_independent, FLAG_CPI),
            (self.auth.is_some(), FLAG_AUTH),
            (self.demand, FLAG_DEMAND),
        ] {
            if set {
                flags |= bit;
            }
        }
        out.push(flags);
        out.push(self.detect_mult);
        // At most 24 + 2 + 229 = 255 by the truncation above.
        out.push(u8::try_from(length).unwrap_or(u8::MAX));
        out.extend_from_slice(&self.my_discriminator.to_be_bytes());
        out.extend_from_slice(&self.your_discriminator.to_be_bytes());
        for interval in [self.desired_min_tx, self.required_min_rx, self.required_min_echo_rx] {
            out.extend_from_slice(&to_micros(interval).to_be_bytes());
        }
        if let (Some(auth), Some(data)) = (&self.auth, auth_data) {
            out.push(auth.auth_type);
            out.push(u8::try_from(auth_len).unwrap_or(u8::MAX));
            out.extend_from_slice(data);
        }
        out
    }
}

#[cfg(test)]
mod tests;
