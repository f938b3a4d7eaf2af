//! Feeds arbitrary bytes to the framer and decoder with both AS widths: nothing may panic, and
//! whatever decodes must encode back to a message that decodes to the same value.
//!
//! The input is used twice: as raw stream bytes, and as (type, body) behind a valid marker and
//! length, so the fuzzer spends its time inside message bodies rather than on the 16-octet
//! marker it would otherwise have to guess.
#![no_main]

use libfuzzer_sys::fuzz_target;
use metallb_bgp::wire::{Codec, decode, encode, frame_length};

fn check(frame: &[u8]) {
    for four_octet_as in [false, true] {
        let codec = Codec { four_octet_as };
        let _ = frame_length(frame);
        if let Ok(message) = decode(frame, codec) {
            if let Ok(bytes) = encode(&message, codec) {
                assert_eq!(decode(&bytes, codec).ok(), Some(message));
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    check(data);
    if let Some((&kind, body)) = data.split_first() {
        let body = &body[..body.len().min(4096 - 19)];
        let mut frame = vec![0xff; 16];
        frame.extend_from_slice(&((19 + body.len()) as u16).to_be_bytes());
        // Types 1-5 are the messages; keep an occasional unknown type.
        frame.push(if kind < 250 { kind % 5 + 1 } else { kind });
        frame.extend_from_slice(body);
        check(&frame);
    }
});
