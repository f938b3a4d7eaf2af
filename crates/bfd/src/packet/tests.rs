use proptest::prelude::*;

use super::*;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A Down packet as a peer sends it first: version 1, no diagnostic, no flags, detect
/// multiplier 3, discriminator 1, 1 s TX (the slow rate of §6.8.3), 300 ms RX, 50 ms echo.
const DOWN_BYTES: [u8; 24] = [
    0x20, // Vers 1 (001), Diag 0
    0x40, // Sta Down (01), P F C A D M = 0
    3,    // Detect Mult
    24,   // Length
    0x00, 0x00, 0x00, 0x01, // My Discriminator
    0x00, 0x00, 0x00, 0x00, // Your Discriminator
    0x00, 0x0f, 0x42, 0x40, // Desired Min TX 1 000 000 µs
    0x00, 0x04, 0x93, 0xe0, // Required Min RX 300 000 µs
    0x00, 0x00, 0xc3, 0x50, // Required Min Echo RX 50 000 µs
];

fn down() -> Packet {
    Packet {
        diag: Diag::None,
        state: State::Down,
        poll: false,
        final_: false,
        control_plane_independent: false,
        demand: false,
        detect_mult: 3,
        my_discriminator: 1,
        your_discriminator: 0,
        desired_min_tx: ms(1000),
        required_min_rx: ms(300),
        required_min_echo_rx: ms(50),
        auth: None,
    }
}

/// An Up packet starting a Poll Sequence, with a diagnostic left from an earlier failure.
const UP_POLL_BYTES: [u8; 24] = [
    0x23, // Vers 1, Diag 3 (neighbor signaled session down)
    0xe8, // Sta Up (11), P (0x20), C (0x08)
    5,    // Detect Mult
    24,   // Length
    0xde, 0xad, 0xbe, 0xef, // My Discriminator
    0x00, 0x00, 0x00, 0x07, // Your Discriminator
    0x00, 0x01, 0x86, 0xa0, // Desired Min TX 100 000 µs
    0x00, 0x00, 0xc3, 0x50, // Required Min RX 50 000 µs
    0x00, 0x00, 0x00, 0x00, // no echo
];

fn up_poll() -> Packet {
    Packet {
        diag: Diag::NeighborSignaledSessionDown,
        state: State::Up,
        poll: true,
        control_plane_independent: true,
        detect_mult: 5,
        my_discriminator: 0xdead_beef,
        your_discriminator: 7,
        desired_min_tx: ms(100),
        required_min_rx: ms(50),
        required_min_echo_rx: Duration::ZERO,
        ..down()
    }
}

/// Simple password authentication (§4.2.1): Auth Type 1, Auth Len 6, Key ID 1, "pwd".
const AUTH_BYTES: [u8; 30] = [
    0x20, 0x44, 3, 30, // Down with A (0x04), Length 30
    0, 0, 0, 1, 0, 0, 0, 0, 0, 0x0f, 0x42, 0x40, 0, 0x04, 0x93, 0xe0, 0, 0, 0xc3, 0x50, //
    1, 6, 1, b'p', b'w', b'd',
];

#[test]
fn golden_packets_decode_and_encode() {
    let with_auth =
        Packet { auth: Some(Auth { auth_type: 1, data: b"\x01pwd".to_vec() }), ..down() };
    let cases: [(&[u8], Packet); 3] =
        [(&DOWN_BYTES, down()), (&UP_POLL_BYTES, up_poll()), (&AUTH_BYTES, with_auth)];
    for (bytes, packet) in cases {
        assert_eq!(Packet::decode(bytes), Ok(packet.clone()), "{bytes:02x?}");
        assert_eq!(packet.encode(), bytes, "{packet:?}");
    }
}

#[test]
fn final_and_demand_bits() {
    let mut bytes = DOWN_BYTES;
    bytes[1] = 0x40 | 0x10 | 0x02; // Down, F, D
    let packet = Packet::decode(&bytes).expect("valid");
    assert!(packet.final_ && packet.demand && !packet.poll);
    assert_eq!(packet.encode(), bytes);
}

#[test]
fn bytes_past_the_length_field_are_ignored() {
    let mut bytes = DOWN_BYTES.to_vec();
    bytes.extend_from_slice(&[0xff; 8]);
    assert_eq!(Packet::decode(&bytes), Ok(down()));
    // A Length above 24 without authentication is allowed too (§6.8.6 sets a minimum only).
    bytes[3] = 28;
    assert_eq!(Packet::decode(&bytes), Ok(down()));
}

#[test]
fn reserved_diagnostics_survive_a_round_trip() {
    let mut bytes = DOWN_BYTES;
    bytes[0] = 0x20 | 31;
    let packet = Packet::decode(&bytes).expect("valid");
    assert_eq!(packet.diag, Diag::Reserved(31));
    assert_eq!(packet.encode(), bytes);
}

#[test]
fn reception_checks_of_section_6_8_6() {
    type Edit = fn(&mut Vec<u8>);
    let cases: [(&str, Edit, DecodeError); 11] = [
        ("empty", |b| b.clear(), DecodeError::Truncated(0)),
        ("23 bytes", |b| b.truncate(23), DecodeError::Truncated(23)),
        ("version 0", |b| b[0] &= 0x1f, DecodeError::Version(0)),
        ("version 2", |b| b[0] = (b[0] & 0x1f) | 0x40, DecodeError::Version(2)),
        ("length 23", |b| b[3] = 23, DecodeError::LengthTooSmall(23)),
        (
            "length beyond payload",
            |b| b[3] = 25,
            DecodeError::LengthExceedsPayload { field: 25, payload: 24 },
        ),
        ("detect mult 0", |b| b[2] = 0, DecodeError::ZeroDetectMult),
        ("multipoint", |b| b[1] |= 0x01, DecodeError::Multipoint),
        ("my discriminator 0", |b| b[4..8].fill(0), DecodeError::ZeroMyDiscriminator),
        (
            "your discriminator 0 in Up",
            |b| b[1] = 0xc0,
            DecodeError::ZeroYourDiscriminator(State::Up),
        ),
        (
            "your discriminator 0 in Init",
            |b| b[1] = 0x80,
            DecodeError::ZeroYourDiscriminator(State::Init),
        ),
    ];
    for (name, edit, expected) in cases {
        let mut bytes = DOWN_BYTES.to_vec();
        edit(&mut bytes);
        assert_eq!(Packet::decode(&bytes), Err(expected), "{name}");
        assert!(!expected.label().is_empty());
    }
}

#[test]
fn authentication_framing_is_checked() {
    type Edit = fn(&mut Vec<u8>);
    let cases: [(&str, Edit, DecodeError); 4] = [
        ("A bit with length 24", |b| b.truncate(24), DecodeError::LengthTooSmall(24)),
        ("A bit with length 25", |b| b[3] = 25, DecodeError::LengthTooSmall(25)),
        ("auth len short of the packet", |b| b[25] = 5, DecodeError::AuthLength(5)),
        ("auth len 1", |b| b[25] = 1, DecodeError::AuthLength(1)),
    ];
    for (name, edit, expected) in cases {
        let mut bytes = AUTH_BYTES.to_vec();
        edit(&mut bytes);
        if name == "A bit with length 24" {
            bytes[3] = 24;
        }
        assert_eq!(Packet::decode(&bytes), Err(expected), "{name}");
    }
}

#[test]
fn intervals_saturate_at_the_field_width() {
    let packet = Packet { desired_min_tx: Duration::from_secs(100_000), ..down() };
    let bytes = packet.encode();
    assert_eq!(&bytes[12..16], &u32::MAX.to_be_bytes());
}

fn arb_state() -> impl Strategy<Value = State> {
    prop_oneof![Just(State::AdminDown), Just(State::Down), Just(State::Init), Just(State::Up)]
}

prop_compose! {
    fn arb_packet()(
        diag in 0u8..32,
        state in arb_state(),
        flags in any::<[bool; 4]>(),
        detect_mult in 1u8..,
        my_discriminator in 1u32..,
        your in any::<u32>(),
        intervals in any::<[u32; 3]>(),
        auth in proptest::option::of((any::<u8>(), proptest::collection::vec(any::<u8>(), 0..40))),
    ) -> Packet {
        let your_discriminator = if matches!(state, State::Init | State::Up) { your.max(1) } else { your };
        Packet {
            diag: Diag::from_bits(diag),
            state,
            poll: flags[0],
            final_: flags[1],
            control_plane_independent: flags[2],
            demand: flags[3],
            detect_mult,
            my_discriminator,
            your_discriminator,
            desired_min_tx: micros(intervals[0]),
            required_min_rx: micros(intervals[1]),
            required_min_echo_rx: micros(intervals[2]),
            auth: auth.map(|(auth_type, data)| Auth { auth_type, data }),
        }
    }
}

proptest! {
    #[test]
    fn decode_inverts_encode(packet in arb_packet()) {
        prop_assert_eq!(Packet::decode(&packet.encode()), Ok(packet));
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
        if let Ok(packet) = Packet::decode(&bytes) {
            // Whatever decodes re-encodes to the bytes the Length field covered.
            let encoded = packet.encode();
            // (Only the Length byte may differ: a longer Length without authentication.)
            prop_assert_eq!(&encoded[..3], &bytes[..3]);
            prop_assert_eq!(&encoded[4..24], &bytes[4..24]);
        }
    }
}
