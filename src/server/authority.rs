//! Lets drivers up to v1.5 talk to the provider.
//!
//! Those drivers dial the provider with gRPC-Go v1.56 `grpc.Dial(<socket path>)`, which sends the
//! socket path (`/var/run/secrets-store-csi-providers/akeyless.sock`) as the HTTP/2 `:authority`.
//! The HTTP/2 server (h2) refuses that value as a malformed authority and resets every stream
//! (`PROTOCOL_ERROR`), so no Mount from such a driver would ever reach the provider. The
//! authority means nothing on a Unix socket and the provider never reads it.
//!
//! [`AuthorityFix`] wraps each accepted connection and, in the client's header blocks only,
//! turns every literal `:authority` field into a field named `x-uds-path` with the same value.
//! Both names are 10 bytes long, so an entry the client adds to its HPACK dynamic table keeps
//! its size, and the server's table stays in step with the client's (indexes and evictions
//! alike) without decoding any value: no Huffman decoding, no table of our own. Every other
//! byte, frame and field passes unchanged; the server's answers are not touched.
//!
//! Hostile input: a malformed frame sequence or header block ends the connection with an I/O
//! error (h2 would refuse it too); header blocks are bounded ([`MAX_HEADER_BLOCK`]).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tonic::transport::server::Connected;

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const FRAME_HEADER: usize = 9;
const HEADERS: u8 = 0x1;
const PUSH_PROMISE: u8 = 0x5;
const CONTINUATION: u8 = 0x9;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY: u8 = 0x20;
/// Largest header block (HEADERS plus CONTINUATIONs) accepted; far above any Mount request.
pub(crate) const MAX_HEADER_BLOCK: usize = 256 * 1024;
/// Frames written towards the server carry at most this much: HTTP/2's minimum (and h2's
/// default) SETTINGS_MAX_FRAME_SIZE.
const MAX_OUT_FRAME: usize = 16_384;
/// Static-table index of `:authority` (RFC 7541, Appendix A).
const AUTHORITY_INDEX: usize = 1;
/// The name given to a literal `:authority`: as long as `:authority`, so table sizes match.
const RENAMED: &[u8] = b"x-uds-path";

enum State {
    /// Waiting for the 24-byte client preface.
    Preface,
    /// Frame by frame: `passthrough` payload bytes of the current non-header frame are still
    /// to be copied; `block` is a header block waiting for its CONTINUATION frames.
    Frames {
        passthrough: usize,
        block: Option<Block>,
    },
    /// Not HTTP/2 with prior knowledge: copied as is (the server answers it).
    Raw,
}

struct Block {
    stream_id: u32,
    end_stream: bool,
    fragment: Vec<u8>,
}

/// A connection whose client-to-server header blocks have `:authority` literals renamed.
pub(crate) struct AuthorityFix<T> {
    inner: T,
    state: State,
    input: Vec<u8>,
    output: Vec<u8>,
    eof: bool,
}

impl<T> AuthorityFix<T> {
    pub fn new(inner: T) -> Self {
        AuthorityFix {
            inner,
            state: State::Preface,
            input: Vec::new(),
            output: Vec::new(),
            eof: false,
        }
    }

    /// Moves what can be processed from `input` to `output`.
    fn process(&mut self) -> io::Result<()> {
        loop {
            match &mut self.state {
                State::Raw => {
                    self.output.append(&mut self.input);
                    return Ok(());
                }
                State::Preface => {
                    let n = self.input.len().min(PREFACE.len());
                    if self.input.get(..n) != PREFACE.get(..n) {
                        self.state = State::Raw;
                        continue;
                    }
                    if n < PREFACE.len() {
                        return Ok(());
                    }
                    self.output.extend(self.input.drain(..PREFACE.len()));
                    self.state = State::Frames {
                        passthrough: 0,
                        block: None,
                    };
                }
                State::Frames { passthrough, block } => {
                    if !frames(&mut self.input, &mut self.output, passthrough, block)? {
                        return Ok(());
                    }
                }
            }
        }
    }
}

/// Moves what can be processed of the frames in `input` to `output`, up to one frame. `Ok(false)`:
/// `input` needs more bytes first.
fn frames(
    input: &mut Vec<u8>,
    output: &mut Vec<u8>,
    passthrough: &mut usize,
    block: &mut Option<Block>,
) -> io::Result<bool> {
    if *passthrough > 0 {
        let n = (*passthrough).min(input.len());
        if n == 0 {
            return Ok(false);
        }
        output.extend(input.drain(..n));
        *passthrough = passthrough.saturating_sub(n);
        return Ok(true);
    }
    let Some(&[l0, l1, l2, ty, flags, s0, s1, s2, s3]) = input.first_chunk::<FRAME_HEADER>() else {
        return Ok(false);
    };
    let len = (usize::from(l0) << 16) | (usize::from(l1) << 8) | usize::from(l2);
    let stream_id = u32::from_be_bytes([s0, s1, s2, s3]) & 0x7fff_ffff;
    // ≤ 2^24 + 9: no overflow.
    let frame_end = FRAME_HEADER.saturating_add(len);
    match ty {
        HEADERS | CONTINUATION => {
            if len > MAX_HEADER_BLOCK {
                return Err(bad("header frame larger than the provider accepts"));
            }
            if input.len() < frame_end {
                return Ok(false);
            }
            let payload: Vec<u8> = input.drain(..frame_end).skip(FRAME_HEADER).collect();
            let done = flags & END_HEADERS != 0;
            let current = match (ty, block.take()) {
                (HEADERS, None) => Block {
                    stream_id,
                    end_stream: flags & END_STREAM != 0,
                    fragment: header_fragment(&payload, flags)?.to_vec(),
                },
                (CONTINUATION, Some(mut open)) if open.stream_id == stream_id => {
                    open.fragment.extend_from_slice(&payload);
                    open
                }
                _ => return Err(bad("header block interrupted")),
            };
            if current.fragment.len() > MAX_HEADER_BLOCK {
                return Err(bad("header block larger than the provider accepts"));
            }
            if done {
                let rewritten = rename_authority(&current.fragment)?;
                write_header_frames(output, current.stream_id, current.end_stream, &rewritten);
            } else {
                *block = Some(current);
            }
        }
        PUSH_PROMISE => return Err(bad("PUSH_PROMISE from a client")),
        _ => {
            if block.is_some() {
                return Err(bad("header block interrupted"));
            }
            output.extend(input.drain(..FRAME_HEADER));
            *passthrough = len;
        }
    }
    Ok(true)
}

fn bad(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("HTTP/2 from the driver: {what}"),
    )
}

/// The header block fragment of a HEADERS payload: padding and priority removed.
fn header_fragment(payload: &[u8], flags: u8) -> io::Result<&[u8]> {
    let mut p = payload;
    if flags & PADDED != 0 {
        let (&pad, rest) = p
            .split_first()
            .ok_or_else(|| bad("HEADERS without its pad length"))?;
        let keep = rest
            .len()
            .checked_sub(usize::from(pad))
            .ok_or_else(|| bad("HEADERS padding longer than the frame"))?;
        p = rest
            .get(..keep)
            .ok_or_else(|| bad("HEADERS padding longer than the frame"))?;
    }
    if flags & PRIORITY != 0 {
        p = p
            .get(5..)
            .ok_or_else(|| bad("HEADERS priority cut short"))?;
    }
    Ok(p)
}

/// Writes `block` as a HEADERS frame plus CONTINUATION frames of at most [`MAX_OUT_FRAME`].
fn write_header_frames(out: &mut Vec<u8>, stream_id: u32, end_stream: bool, block: &[u8]) {
    let mut rest = block;
    let mut first = true;
    loop {
        let (chunk, tail) = rest.split_at(rest.len().min(MAX_OUT_FRAME));
        let mut flags = 0;
        if first && end_stream {
            flags |= END_STREAM;
        }
        if tail.is_empty() {
            flags |= END_HEADERS;
        }
        let len = chunk.len() as u32; // ≤ MAX_OUT_FRAME
        out.extend_from_slice(&len.to_be_bytes()[1..]);
        out.push(if first { HEADERS } else { CONTINUATION });
        out.push(flags);
        out.extend_from_slice(&stream_id.to_be_bytes());
        out.extend_from_slice(chunk);
        if tail.is_empty() {
            return;
        }
        rest = tail;
        first = false;
    }
}

/// An HPACK integer with an `prefix`-bit prefix at `block[pos..]`: (value, bytes used).
fn read_int(block: &[u8], pos: usize, prefix: u32) -> io::Result<(usize, usize)> {
    // prefix is 4 to 7 bits (the HPACK representations).
    let mask = (1usize << prefix.min(8)).saturating_sub(1);
    let first = usize::from(
        *block
            .get(pos)
            .ok_or_else(|| bad("header block cut short"))?,
    ) & mask;
    if first < mask {
        return Ok((first, 1));
    }
    let mut value = mask;
    let mut shift: u32 = 0;
    let mut used = 1;
    loop {
        let b = *block
            .get(pos.saturating_add(used))
            .ok_or_else(|| bad("header block cut short"))?;
        used = used.saturating_add(1);
        // shift ≤ 21 and the digit < 128: the sum stays far below usize::MAX.
        value = value.saturating_add(usize::from(b & 0x7f) << shift);
        if b & 0x80 == 0 {
            return Ok((value, used));
        }
        shift = shift.saturating_add(7);
        if shift > 21 {
            return Err(bad("HPACK integer too large"));
        }
    }
}

/// The length in bytes of the HPACK string literal at `block[pos..]`, prefix included.
fn string_len(block: &[u8], pos: usize) -> io::Result<usize> {
    let (len, used) = read_int(block, pos, 7)?;
    let end = pos
        .checked_add(used)
        .and_then(|p| p.checked_add(len))
        .filter(|&end| end <= block.len())
        .ok_or_else(|| bad("header block cut short"))?;
    Ok(end.saturating_sub(pos))
}

/// One representation of a header block: where it is, and what its name is known to be.
struct Field {
    start: usize,
    /// End of the name-index prefix (the name string or the value follows).
    after_index: usize,
    end: usize,
    /// `Some(kind bits)` for a literal, `None` for an indexed field or a table size update.
    literal: Option<u8>,
    index: usize,
    /// The field is a pseudo-header, as far as can be told without decoding: a static-table
    /// pseudo-header name (indexes 1 to 14), or a plain (not Huffman-coded) name starting `:`.
    pseudo: bool,
}

/// Splits an HPACK header block into its representations.
fn fields(block: &[u8]) -> io::Result<Vec<Field>> {
    let mut out = Vec::new();
    let mut pos = 0;
    while let Some(&b) = block.get(pos) {
        let (literal, prefix) = match b {
            _ if b & 0x80 != 0 => (None, 7),          // indexed field
            _ if b & 0xc0 == 0x40 => (Some(0x40), 6), // literal, incremental indexing
            _ if b & 0xe0 == 0x20 => (None, 5),       // dynamic table size update
            _ => (Some(b & 0xf0), 4),                 // literal without / never indexed
        };
        let (index, used) = read_int(block, pos, prefix)?;
        let after_index = pos.saturating_add(used);
        let size_update = literal.is_none() && b & 0x80 == 0;
        let mut pseudo = !size_update && (1..=14).contains(&index);
        let mut end = after_index;
        if literal.is_some() {
            if index == 0 {
                let name = string_len(block, end)?;
                let (len, len_used) = read_int(block, end, 7)?;
                let huffman = block.get(end).is_some_and(|b| b & 0x80 != 0);
                let first = block.get(end.saturating_add(len_used));
                pseudo = !huffman && len > 0 && first == Some(&b':');
                end = end.saturating_add(name);
            }
            end = end.saturating_add(string_len(block, end)?);
        }
        out.push(Field {
            start: pos,
            after_index,
            end,
            literal,
            index,
            pseudo,
        });
        pos = end;
    }
    Ok(out)
}

/// Copies an HPACK header block, renaming a literal field whose name is the static
/// `:authority` to [`RENAMED`] (a literal with a new name; same value bytes, same table size),
/// unless a pseudo-header follows it in the block: pseudo-headers must precede every regular
/// field, and gRPC-Go sends `:authority` last of them (h2's own client does not, but its
/// authority is valid).
pub(crate) fn rename_authority(block: &[u8]) -> io::Result<Vec<u8>> {
    let fields = fields(block)?;
    let mut out = Vec::with_capacity(block.len().saturating_add(16));
    for (i, f) in fields.iter().enumerate() {
        let rename = f.index == AUTHORITY_INDEX
            && f.literal.is_some()
            && !fields
                .iter()
                .skip(i.saturating_add(1))
                .any(|later| later.pseudo);
        match f.literal {
            Some(kind) if rename => {
                out.push(kind); // name index 0: a new name follows
                out.push(RENAMED.len() as u8); // not Huffman-coded, 10 < 127
                out.extend_from_slice(RENAMED);
                out.extend_from_slice(block.get(f.after_index..f.end).unwrap_or_default());
            }
            _ => out.extend_from_slice(block.get(f.start..f.end).unwrap_or_default()),
        }
    }
    Ok(out)
}

/// Rewrites a whole client-to-server byte stream at once, as [`AuthorityFix`] does piecewise
/// (for fuzzing and tests).
pub fn rewrite_client_bytes(input: &[u8]) -> io::Result<Vec<u8>> {
    let mut fix = AuthorityFix::new(());
    fix.input.extend_from_slice(input);
    fix.process()?;
    Ok(fix.output)
}

impl<T: AsyncRead + Unpin> AsyncRead for AuthorityFix<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if !this.output.is_empty() {
                let n = this.output.len().min(buf.remaining());
                buf.put_slice(this.output.get(..n).unwrap_or_default());
                this.output.drain(..n);
                return Poll::Ready(Ok(()));
            }
            if this.eof {
                return Poll::Ready(Ok(()));
            }
            let mut chunk = [0u8; 8192];
            let mut read = ReadBuf::new(&mut chunk);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut read))?;
            if read.filled().is_empty() {
                this.eof = true;
                continue;
            }
            this.input.extend_from_slice(read.filled());
            this.process()?;
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for AuthorityFix<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

impl<T: Connected> Connected for AuthorityFix<T> {
    type ConnectInfo = T::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    /// gRPC-Go's first request on a connection: :method POST, :scheme http, :path and
    /// :authority as literals with incremental indexing (static names), content-type.
    fn grpc_go_block(authority: &[u8]) -> Vec<u8> {
        let mut b = vec![0x83, 0x86];
        let path = b"/v1alpha1.CSIDriverProvider/Mount";
        b.push(0x44);
        b.push(path.len() as u8);
        b.extend_from_slice(path);
        b.push(0x41);
        b.push(authority.len() as u8);
        b.extend_from_slice(authority);
        b.push(0x5f); // literal, incremental indexing, name index 31 (content-type)
        b.push(16);
        b.extend_from_slice(b"application/grpc");
        b
    }

    fn frame(ty: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let mut out = (payload.len() as u32).to_be_bytes()[1..].to_vec();
        out.push(ty);
        out.push(flags);
        out.extend_from_slice(&stream.to_be_bytes());
        out.extend_from_slice(payload);
        out
    }

    #[test]
    fn renames_literal_authority_keeping_its_value_and_size() {
        let sock = b"/var/run/secrets-store-csi-providers/akeyless.sock";
        let out = rename_authority(&grpc_go_block(sock)).unwrap();
        let mut want = vec![0x83, 0x86, 0x44, 33];
        want.extend_from_slice(b"/v1alpha1.CSIDriverProvider/Mount");
        want.extend_from_slice(&[0x40, 10]);
        want.extend_from_slice(b"x-uds-path");
        want.push(sock.len() as u8);
        want.extend_from_slice(sock);
        want.extend_from_slice(&[0x5f, 16]);
        want.extend_from_slice(b"application/grpc");
        assert_eq!(out, want);
        assert_eq!(RENAMED.len(), ":authority".len());
    }

    /// h2's own client sends :authority before :path: renaming it would put a regular field
    /// before a pseudo-header, so it is left alone (its value is a valid authority anyway).
    #[test]
    fn authority_followed_by_a_pseudo_header_is_kept() {
        let mut b = vec![0x83, 0x86, 0x41, 9];
        b.extend_from_slice(b"localhost");
        b.extend_from_slice(&[0x44, 1, b'/']);
        assert_eq!(rename_authority(&b).unwrap(), b);
        // A plain new-name pseudo-header after it counts too; a regular one does not.
        let mut c = vec![0x41, 1, b'x', 0x00, 2, b':', b'p', 1, b'/'];
        assert_eq!(rename_authority(&c).unwrap(), c);
        c = vec![0x41, 1, b'x', 0x00, 2, b't', b'e', 1, b't'];
        let mut want = vec![0x40, 10];
        want.extend_from_slice(RENAMED);
        want.extend_from_slice(&[1, b'x', 0x00, 2, b't', b'e', 1, b't']);
        assert_eq!(rename_authority(&c).unwrap(), want);
    }

    #[test]
    fn other_representations_pass_unchanged() {
        // Indexed (static and dynamic), a size update, never-indexed and new-name literals,
        // a multi-byte index and a Huffman-flagged value.
        let mut b = vec![0x82, 0xbe, 0x3f, 0xe1, 0x1f, 0x10, 0x01, b'x', 0x81, 0xff];
        b.extend_from_slice(&[0x00, 0x02, b'a', b'b', 0x02, b'c', b'd']);
        assert_eq!(rename_authority(&b).unwrap(), b);
        // :authority without indexing, then never indexed (the last one is renamed: the first
        // is followed by a pseudo-header), with a Huffman value.
        let out = rename_authority(&[0x01, 0x82, 0xaa, 0xbb, 0x11, 0x00]).unwrap();
        let mut want = vec![0x01, 0x82, 0xaa, 0xbb, 0x10, 10];
        want.extend_from_slice(RENAMED);
        want.push(0x00);
        assert_eq!(out, want);
    }

    #[test]
    fn malformed_blocks_are_errors_not_panics() {
        for b in [
            &[0x41][..],
            &[0x41, 0x05, b'a'],
            &[0x7f],
            &[0x7f, 0xff, 0xff, 0xff, 0xff, 0x01],
            &[0x00, 0x7f, 0x80],
            &[0x40, 0x03, b'a'],
        ] {
            assert!(rename_authority(b).is_err(), "{b:?}");
        }
    }

    async fn through(input: Vec<u8>) -> io::Result<Vec<u8>> {
        let (mut client, server) = tokio::io::duplex(64);
        let writer = tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            // Small writes: frames arrive split across reads. Stops once the reader is gone.
            for chunk in input.chunks(7) {
                if client.write_all(chunk).await.is_err() {
                    return;
                }
            }
        });
        let mut fixed = AuthorityFix::new(server);
        let mut out = Vec::new();
        let res = fixed.read_to_end(&mut out).await;
        drop(fixed);
        writer.await.unwrap();
        res.map(|_| out)
    }

    #[tokio::test]
    async fn rewrites_headers_and_continuations_and_passes_other_frames() {
        let block = grpc_go_block(b"/tmp/x/akeyless.sock");
        let (a, b) = block.split_at(10);
        let mut input = PREFACE.to_vec();
        input.extend(frame(0x4, 0, 0, &[0, 3, 0, 0, 0x10, 0])); // SETTINGS
        // HEADERS (padded, with priority) without END_HEADERS, then its CONTINUATION.
        let mut padded = vec![2, 0, 0, 0, 0, 16];
        padded.extend_from_slice(a);
        padded.extend_from_slice(&[0, 0]);
        input.extend(frame(HEADERS, PADDED | PRIORITY, 1, &padded));
        input.extend(frame(CONTINUATION, END_HEADERS, 1, b));
        input.extend(frame(0x0, END_STREAM, 1, b"\0\0\0\0\x02hi")); // DATA
        let out = through(input).await.unwrap();

        let mut want = PREFACE.to_vec();
        want.extend(frame(0x4, 0, 0, &[0, 3, 0, 0, 0x10, 0]));
        want.extend(frame(
            HEADERS,
            END_HEADERS,
            1,
            &rename_authority(&block).unwrap(),
        ));
        want.extend(frame(0x0, END_STREAM, 1, b"\0\0\0\0\x02hi"));
        assert_eq!(out, want);
    }

    #[tokio::test]
    async fn large_blocks_are_split_and_oversized_ones_refused() {
        let mut block = Vec::new();
        for _ in 0..300 {
            block.extend_from_slice(&[0x00, 0x01, b'k', 0x7f, 0x81, 0x01]);
            block.extend(std::iter::repeat_n(b'v', 127 + 129));
        }
        let mut input = PREFACE.to_vec();
        input.extend(frame(HEADERS, END_HEADERS | END_STREAM, 3, &block));
        let out = through(input).await.unwrap();
        let mut want = PREFACE.to_vec();
        let chunks: Vec<_> = block.chunks(MAX_OUT_FRAME).collect();
        for (i, c) in chunks.iter().enumerate() {
            let (ty, mut flags) = if i == 0 {
                (HEADERS, END_STREAM)
            } else {
                (CONTINUATION, 0)
            };
            if i + 1 == chunks.len() {
                flags |= END_HEADERS;
            }
            want.extend(frame(ty, flags, 3, c));
        }
        assert_eq!(out, want);

        let mut input = PREFACE.to_vec();
        input.extend(frame(HEADERS, 0, 1, &[0x82]));
        input.extend(frame(0x0, 0, 1, b"x"));
        assert!(through(input).await.is_err(), "DATA inside a header block");
        let mut input = PREFACE.to_vec();
        input.extend(frame(
            HEADERS,
            END_HEADERS,
            1,
            &vec![0x82; MAX_HEADER_BLOCK + 1],
        ));
        assert!(through(input).await.is_err(), "oversized header block");
    }

    /// Arbitrary bytes, whole or after a valid preface and frame header, never panic.
    #[tokio::test]
    async fn arbitrary_input_never_panics() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for round in 0..2000 {
            let len = (next() % 96) as usize;
            let noise: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let _ = rename_authority(&noise);
            let mut input = PREFACE.to_vec();
            let ty = [HEADERS, CONTINUATION, 0x0, 0x4][round % 4];
            input.extend(frame(ty, (next() as u8) | END_HEADERS, 1, &noise));
            input.extend(&noise);
            let _ = through(input).await;
        }
    }

    #[tokio::test]
    async fn not_http2_passes_as_is() {
        let input = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec();
        assert_eq!(through(input.clone()).await.unwrap(), input);
    }
}
