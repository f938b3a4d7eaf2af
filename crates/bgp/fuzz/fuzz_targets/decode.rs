//! Feeds arbitrary bytes to the framer and decoder with both AS widths: nothing may panic, and
//! whatever decodes must encode back to a message that decodes to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use metallb_bgp::wire::{Codec, decode, encode, frame_length};

fuzz_target!(|data: &[u8]| {
    for four_octet_as in [false, true] {
        let codec = Codec { four_octet_as };
        let _ = frame_length(data);
        if let Ok(message) = decode(data, codec) {
            if let Ok(bytes) = encode(&message, codec) {
                assert_eq!(decode(&bytes, codec).ok(), Some(message));
            }
        }
    }
});
