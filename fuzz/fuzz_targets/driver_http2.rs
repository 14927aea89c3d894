#![no_main]
//! Any bytes a client sends on the provider's socket: the HTTP/2 `:authority` rewriter (which
//! parses frames and HPACK header blocks) never panics, and leaves a stream that isn't an
//! HTTP/2 preface untouched.
use akeyless_csi_provider::server::rewrite_client_bytes;
use libfuzzer_sys::fuzz_target;

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

fuzz_target!(|data: &[u8]| {
    let _ = rewrite_client_bytes(data);
    // After a valid preface, the rest is parsed as frames.
    let mut framed = PREFACE.to_vec();
    framed.extend_from_slice(data);
    if let Ok(out) = rewrite_client_bytes(&framed) {
        assert!(out.starts_with(PREFACE));
    }
    if !data.is_empty() && !PREFACE.starts_with(&data[..data.len().min(PREFACE.len())]) {
        assert_eq!(rewrite_client_bytes(data).ok().as_deref(), Some(data));
    }
});
