//! Any datagram: decoding never panics, and whatever decodes survives a round trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use metallb_bfd::Packet;

fuzz_target!(|data: &[u8]| {
    if let Ok(packet) = Packet::decode(data) {
        let again = Packet::decode(&packet.encode());
        assert_eq!(again.as_ref(), Ok(&packet), "{data:02x?}");
    }
});
