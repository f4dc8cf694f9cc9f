//! The paravirtual request channel of a function image (`#[unikernel::function]`): how an
//! HTTP request reaches the guest and its response leaves it, through the project's KVM
//! monitor, without a network stack.
//!
//! # Detection
//!
//! CPUID leaf [`CPUID_FEATURES`](crate::hypervisor::CPUID_FEATURES), EAX bit
//! [`FEATURE_FUNCTION`]: the monitor serves [`FUNCTION_PORT`]. A function image that does
//! not find it (under QEMU, or a monitor started without a request to serve) says so in one
//! sentence and exits with a non-zero status.
//!
//! # Protocol
//!
//! The guest owns a [`Mailbox`] (128 bytes, 8-byte aligned, below 4 GiB) and a buffer of
//! `capacity` bytes at guest-physical `buffer`. Every exchange is one 32-bit write of the
//! mailbox's guest-physical address to [`FUNCTION_PORT`], that is one VM exit:
//!
//! 1. After its init (the subsystems and `#[unikernel::init]`), the guest sets `state` to
//!    [`WAITING`] and writes the port. This first `WAITING` exit is where the host takes its
//!    snapshot (mode `snapshot`): everything before it is shared by every request.
//! 2. The host writes the request's [wire encoding](encode_request) into the buffer
//!    (at most `capacity` bytes), `length`, 32 fresh bytes of randomness into `seed`, its
//!    Unix time into `wall_ns`, and `state` = [`REQUEST`], then resumes the vCPU. The
//!    guest reads the mailbox after the write returns.
//! 3. The guest handles the request, writes the response's
//!    [wire encoding](encode_response) into the same buffer, sets `length` and `state` =
//!    [`RESPONSE`], and writes the port again. At that exit the host takes the response.
//!    The guest then waits for the next request in that same exit: the host either ends the
//!    VM (modes `fresh` and `snapshot`: one request per VM) or does step 2 again (mode
//!    `warm`).
//!
//! A mailbox whose `state` is neither `WAITING` nor `RESPONSE` at an exit, whose buffer is
//! not inside guest memory or whose `length` exceeds `capacity` is a guest error: the host
//! ends the VM and reports it. The host never trusts `length` or the bytes it reads back:
//! [`decode_response`] checks every length against the message.
//!
//! # Wire encoding
//!
//! Little-endian and length-prefixed; every length is a `u32`, and a message ends exactly
//! where its last field does (trailing bytes are an error).
//!
//! ```text
//! request:  "UKRQ" method:str target:str header_count:u32 (name:str value:bytes)* body:bytes
//! response: "UKRS" status:u16 header_count:u32 (name:str value:bytes)* body:bytes
//! str, bytes: length:u32 then that many bytes (str: UTF-8)
//! ```
//!
//! `target` is the request's path and query as it came (`/resize?w=10`). Header names are
//! UTF-8 (HTTP's are ASCII tokens); values are bytes, as `http::HeaderValue` allows.

use core::fmt;

/// The type of the function note, the second note (owner `"Unikernel"`, section
/// `.note.unikernel`, as the manifest) of an image built by `#[unikernel::function]`: its
/// description is `key=value` lines, NUL padded to 4 bytes, with the keys `name`,
/// `method`, `path`, `mode` (`fresh`, `snapshot` or `warm`), `timeout_ms`, `max_request`
/// (bytes), `memory_mib` and `state` (`1` when the function takes `#[unikernel::init]`'s
/// state). [`note_fields`] reads it.
pub const NOTE_TYPE: u32 = 2;

/// The `(key, value)` lines of a function note's description.
pub fn note_fields(desc: &[u8]) -> impl Iterator<Item = (&str, &str)> {
    let end = desc.iter().position(|&b| b == 0).unwrap_or(desc.len());
    core::str::from_utf8(&desc[..end])
        .unwrap_or("")
        .lines()
        .filter_map(|line| line.split_once('='))
}

/// `EAX` bit of CPUID leaf [`CPUID_FEATURES`](crate::hypervisor::CPUID_FEATURES): the
/// request channel at [`FUNCTION_PORT`].
pub const FEATURE_FUNCTION: u32 = 1 << 2;
/// A 32-bit write of the guest-physical address of a [`Mailbox`] hands over a response (or,
/// the first time, nothing) and waits for a request.
pub const FUNCTION_PORT: u16 = 0x0fe8;

/// `state`: the guest waits for its first request; the buffer holds nothing.
pub const WAITING: u32 = 1;
/// `state`: the host put a request of `length` bytes in the buffer.
pub const REQUEST: u32 = 2;
/// `state`: the guest put a response of `length` bytes in the buffer and waits for the
/// next request.
pub const RESPONSE: u32 = 3;

/// The size of a [`Mailbox`] in guest memory.
pub const MAILBOX_SIZE: usize = 128;

/// The mailbox in guest memory through which requests and responses are exchanged.
#[repr(C, align(8))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Mailbox {
    /// [`WAITING`], [`REQUEST`] or [`RESPONSE`]: who wrote the buffer last.
    pub state: u32,
    /// No flag is defined yet: written as 0, ignored when read.
    pub flags: u32,
    /// Guest-physical address of the buffer.
    pub buffer: u64,
    /// Bytes the buffer holds at most.
    pub capacity: u64,
    /// Bytes of the request or response in the buffer.
    pub length: u64,
    /// Fresh randomness from the host, written with every request (so that VMs restored
    /// from one snapshot do not share random numbers).
    pub seed: [u8; 32],
    /// The host's Unix time in nanoseconds when it wrote the request (so that a restored
    /// guest's clock is right).
    pub wall_ns: u64,
    /// Room to grow: written as 0, ignored when read.
    pub reserved: [u64; 7],
}

impl Mailbox {
    /// The mailbox's bytes as they lie in guest memory.
    pub fn to_bytes(&self) -> [u8; MAILBOX_SIZE] {
        let mut bytes = [0; MAILBOX_SIZE];
        bytes[0..4].copy_from_slice(&self.state.to_le_bytes());
        bytes[4..8].copy_from_slice(&self.flags.to_le_bytes());
        bytes[8..16].copy_from_slice(&self.buffer.to_le_bytes());
        bytes[16..24].copy_from_slice(&self.capacity.to_le_bytes());
        bytes[24..32].copy_from_slice(&self.length.to_le_bytes());
        bytes[32..64].copy_from_slice(&self.seed);
        bytes[64..72].copy_from_slice(&self.wall_ns.to_le_bytes());
        for (index, word) in self.reserved.iter().enumerate() {
            let at = 72 + index * 8;
            bytes[at..at + 8].copy_from_slice(&word.to_le_bytes());
        }
        bytes
    }

    /// A mailbox from its bytes in guest memory.
    pub fn from_bytes(bytes: [u8; MAILBOX_SIZE]) -> Self {
        let u32_at = |at: usize| {
            u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
        };
        let u64_at = |at: usize| {
            let mut word = [0; 8];
            word.copy_from_slice(&bytes[at..at + 8]);
            u64::from_le_bytes(word)
        };
        let mut seed = [0; 32];
        seed.copy_from_slice(&bytes[32..64]);
        Mailbox {
            state: u32_at(0),
            flags: u32_at(4),
            buffer: u64_at(8),
            capacity: u64_at(16),
            length: u64_at(24),
            seed,
            wall_ns: u64_at(64),
            reserved: core::array::from_fn(|index| u64_at(72 + index * 8)),
        }
    }
}

const REQUEST_MAGIC: [u8; 4] = *b"UKRQ";
const RESPONSE_MAGIC: [u8; 4] = *b"UKRS";

/// Why a message could not be encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EncodeError {
    /// The message needs `needed` bytes; the buffer has fewer.
    TooLarge { needed: usize },
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::TooLarge { needed } => {
                write!(
                    f,
                    "the message needs {needed} bytes, more than the buffer holds"
                )
            }
        }
    }
}

/// Why bytes are not a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The message does not start with the expected tag (a request where a response was
    /// expected, or not a message at all).
    BadMagic,
    /// A field runs past the end of the bytes.
    Truncated,
    /// A text field (method, target, header name) is not UTF-8.
    NotUtf8,
    /// A response's status is outside 100-999.
    BadStatus(u16),
    /// Bytes follow the end of the message.
    TrailingBytes,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::BadMagic => f.write_str("not a message of the expected kind"),
            DecodeError::Truncated => f.write_str("a field runs past the end of the message"),
            DecodeError::NotUtf8 => f.write_str("a text field is not UTF-8"),
            DecodeError::BadStatus(status) => write!(f, "status {status} is outside 100-999"),
            DecodeError::TrailingBytes => f.write_str("bytes follow the end of the message"),
        }
    }
}

/// Writes fields one after the other into a buffer, counting what does not fit so that the
/// error says how much was needed.
struct Writer<'a> {
    out: &'a mut [u8],
    at: usize,
}

impl Writer<'_> {
    fn put(&mut self, bytes: &[u8]) {
        let end = self.at.saturating_add(bytes.len());
        if let Some(room) = self.out.get_mut(self.at..end) {
            room.copy_from_slice(bytes);
        }
        self.at = end;
    }

    fn put_len(&mut self, length: usize) -> Result<(), EncodeError> {
        let length =
            u32::try_from(length).map_err(|_| EncodeError::TooLarge { needed: usize::MAX })?;
        self.put(&length.to_le_bytes());
        Ok(())
    }

    fn put_field(&mut self, bytes: &[u8]) -> Result<(), EncodeError> {
        self.put_len(bytes.len())?;
        self.put(bytes);
        Ok(())
    }

    fn put_headers<'h, H>(&mut self, headers: H) -> Result<(), EncodeError>
    where
        H: IntoIterator<Item = (&'h str, &'h [u8])>,
        H::IntoIter: Clone,
    {
        let headers = headers.into_iter();
        self.put_len(headers.clone().count())?;
        for (name, value) in headers {
            self.put_field(name.as_bytes())?;
            self.put_field(value)?;
        }
        Ok(())
    }

    fn finish(self) -> Result<usize, EncodeError> {
        if self.at <= self.out.len() {
            Ok(self.at)
        } else {
            Err(EncodeError::TooLarge { needed: self.at })
        }
    }
}

/// Encodes a request into `out`; returns the bytes written, or the size needed.
pub fn encode_request<'h, H>(
    out: &mut [u8],
    method: &str,
    target: &str,
    headers: H,
    body: &[u8],
) -> Result<usize, EncodeError>
where
    H: IntoIterator<Item = (&'h str, &'h [u8])>,
    H::IntoIter: Clone,
{
    let mut writer = Writer { out, at: 0 };
    writer.put(&REQUEST_MAGIC);
    writer.put_field(method.as_bytes())?;
    writer.put_field(target.as_bytes())?;
    writer.put_headers(headers)?;
    writer.put_field(body)?;
    writer.finish()
}

/// Encodes a response into `out`; returns the bytes written, or the size needed.
pub fn encode_response<'h, H>(
    out: &mut [u8],
    status: u16,
    headers: H,
    body: &[u8],
) -> Result<usize, EncodeError>
where
    H: IntoIterator<Item = (&'h str, &'h [u8])>,
    H::IntoIter: Clone,
{
    let mut writer = Writer { out, at: 0 };
    writer.put(&RESPONSE_MAGIC);
    writer.put(&status.to_le_bytes());
    writer.put_headers(headers)?;
    writer.put_field(body)?;
    writer.finish()
}

/// Reads fields off the front of a message; every read checks the length first.
#[derive(Clone, Debug)]
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, length: usize) -> Result<&'a [u8], DecodeError> {
        if length > self.bytes.len() {
            return Err(DecodeError::Truncated);
        }
        let (head, rest) = self.bytes.split_at(length);
        self.bytes = rest;
        Ok(head)
    }

    fn u16(&mut self) -> Result<u16, DecodeError> {
        let bytes = self.take(2)?;
        Ok(u16::from_le_bytes([bytes[0], bytes[1]]))
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        let bytes = self.take(4)?;
        Ok(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }

    fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let length = self.u32()?;
        self.take(usize::try_from(length).map_err(|_| DecodeError::Truncated)?)
    }

    fn str(&mut self) -> Result<&'a str, DecodeError> {
        core::str::from_utf8(self.bytes()?).map_err(|_| DecodeError::NotUtf8)
    }

    fn magic(&mut self, magic: [u8; 4]) -> Result<(), DecodeError> {
        match self.take(4) {
            Ok(found) if found == magic => Ok(()),
            Ok(_) => Err(DecodeError::BadMagic),
            // Fewer than four bytes: a prefix of the tag is a truncated message.
            Err(_) if magic.starts_with(self.bytes) => Err(DecodeError::Truncated),
            Err(_) => Err(DecodeError::BadMagic),
        }
    }

    /// The header list: checked whole here, so that iterating it later cannot fail.
    fn headers(&mut self) -> Result<Headers<'a>, DecodeError> {
        let count = self.u32()?;
        // Each header takes at least its two lengths: a count the bytes cannot hold is
        // refused before any loop over it.
        if u64::from(count) * 8 > self.bytes.len() as u64 {
            return Err(DecodeError::Truncated);
        }
        let start = self.bytes;
        for _ in 0..count {
            self.str()?;
            self.bytes()?;
        }
        let used = start.len() - self.bytes.len();
        Ok(Headers {
            reader: Reader {
                bytes: &start[..used],
            },
            remaining: count,
        })
    }

    fn end(&self) -> Result<(), DecodeError> {
        if self.bytes.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes)
        }
    }
}

/// A decoded request, borrowing the message's bytes.
#[derive(Clone, Debug)]
pub struct RequestView<'a> {
    pub method: &'a str,
    /// Path and query, as the client sent them.
    pub target: &'a str,
    pub headers: Headers<'a>,
    pub body: &'a [u8],
}

/// A decoded response, borrowing the message's bytes.
#[derive(Clone, Debug)]
pub struct ResponseView<'a> {
    pub status: u16,
    pub headers: Headers<'a>,
    pub body: &'a [u8],
}

/// The headers of a decoded message, in their order: `(name, value)`.
#[derive(Clone, Debug)]
pub struct Headers<'a> {
    reader: Reader<'a>,
    remaining: u32,
}

impl<'a> Headers<'a> {
    /// How many headers the message has.
    pub fn len(&self) -> usize {
        self.remaining as usize
    }

    /// Whether the message has no headers.
    pub fn is_empty(&self) -> bool {
        self.remaining == 0
    }
}

impl<'a> Iterator for Headers<'a> {
    type Item = (&'a str, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        // Checked when decoded; an error here would be a bug, and ends the list.
        let name = self.reader.str().ok()?;
        let value = self.reader.bytes().ok()?;
        Some((name, value))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.remaining as usize))
    }
}

/// Decodes a request; any input that is not exactly one request is an error.
pub fn decode_request(bytes: &[u8]) -> Result<RequestView<'_>, DecodeError> {
    let mut reader = Reader { bytes };
    reader.magic(REQUEST_MAGIC)?;
    let method = reader.str()?;
    let target = reader.str()?;
    let headers = reader.headers()?;
    let body = reader.bytes()?;
    reader.end()?;
    Ok(RequestView {
        method,
        target,
        headers,
        body,
    })
}

/// Decodes a response; any input that is not exactly one response is an error.
pub fn decode_response(bytes: &[u8]) -> Result<ResponseView<'_>, DecodeError> {
    let mut reader = Reader { bytes };
    reader.magic(RESPONSE_MAGIC)?;
    let status = reader.u16()?;
    if !(100..=999).contains(&status) {
        return Err(DecodeError::BadStatus(status));
    }
    let headers = reader.headers()?;
    let body = reader.bytes()?;
    reader.end()?;
    Ok(ResponseView {
        status,
        headers,
        body,
    })
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use core::mem::{align_of, offset_of};
    use std::vec;
    use std::vec::Vec;

    #[test]
    fn a_function_note_reads_as_its_lines() {
        let fields: Vec<_> = note_fields(b"name=hello\nmethod=GET\npath=/a=b\n\0\0").collect();
        assert_eq!(
            fields,
            [("name", "hello"), ("method", "GET"), ("path", "/a=b")]
        );
        assert_eq!(note_fields(b"\xff=1").count(), 0);
    }

    #[test]
    fn the_mailbox_layout_is_fixed() {
        assert_eq!(size_of::<Mailbox>(), MAILBOX_SIZE);
        assert_eq!(align_of::<Mailbox>(), 8);
        assert_eq!(offset_of!(Mailbox, state), 0);
        assert_eq!(offset_of!(Mailbox, flags), 4);
        assert_eq!(offset_of!(Mailbox, buffer), 8);
        assert_eq!(offset_of!(Mailbox, capacity), 16);
        assert_eq!(offset_of!(Mailbox, length), 24);
        assert_eq!(offset_of!(Mailbox, seed), 32);
        assert_eq!(offset_of!(Mailbox, wall_ns), 64);
        assert_eq!(offset_of!(Mailbox, reserved), 72);
    }

    #[test]
    fn mailbox_bytes_follow_its_layout_and_read_back() {
        let mailbox = Mailbox {
            state: REQUEST,
            flags: 0,
            buffer: 0x20_0000,
            capacity: 1 << 20,
            length: 77,
            seed: core::array::from_fn(|index| index as u8 + 1),
            wall_ns: 1_700_000_000_000_000_000,
            reserved: [0; 7],
        };
        let bytes = mailbox.to_bytes();
        assert_eq!(bytes[0..4], REQUEST.to_le_bytes());
        assert_eq!(bytes[8..16], 0x20_0000u64.to_le_bytes());
        assert_eq!(bytes[16..24], (1u64 << 20).to_le_bytes());
        assert_eq!(bytes[24..32], 77u64.to_le_bytes());
        assert_eq!(bytes[32], 1);
        assert_eq!(bytes[63], 32);
        assert_eq!(bytes[64..72], 1_700_000_000_000_000_000u64.to_le_bytes());
        assert_eq!(bytes[72..], [0; 56]);
        assert_eq!(Mailbox::from_bytes(bytes), mailbox);
    }

    const HEADERS: [(&str, &[u8]); 2] = [("content-type", b"application/json"), ("x-id", b"\xff7")];

    fn sample_request() -> Vec<u8> {
        let mut out = vec![0; 256];
        let length =
            encode_request(&mut out, "POST", "/resize?w=10", HEADERS, b"{\"w\":1}").unwrap();
        out.truncate(length);
        out
    }

    fn sample_response() -> Vec<u8> {
        let mut out = vec![0; 256];
        let length = encode_response(&mut out, 201, HEADERS, b"done").unwrap();
        out.truncate(length);
        out
    }

    #[test]
    fn a_request_round_trips() {
        let bytes = sample_request();
        let request = decode_request(&bytes).unwrap();
        assert_eq!(request.method, "POST");
        assert_eq!(request.target, "/resize?w=10");
        assert_eq!(request.headers.len(), 2);
        assert_eq!(request.headers.collect::<Vec<_>>(), HEADERS);
        assert_eq!(request.body, b"{\"w\":1}");
    }

    #[test]
    fn a_response_round_trips() {
        let bytes = sample_response();
        let response = decode_response(&bytes).unwrap();
        assert_eq!(response.status, 201);
        assert_eq!(response.headers.collect::<Vec<_>>(), HEADERS);
        assert_eq!(response.body, b"done");
    }

    #[test]
    fn an_empty_message_round_trips() {
        let mut out = [0; 18];
        let length = encode_response(&mut out, 204, [], b"").unwrap();
        assert_eq!(length, 4 + 2 + 4 + 4);
        let response = decode_response(&out[..length]).unwrap();
        assert!(response.headers.is_empty());
        assert_eq!(response.body, b"");
    }

    #[test]
    fn a_message_that_does_not_fit_says_what_it_needs() {
        let needed = sample_request().len();
        for size in 0..needed {
            let mut out = vec![0; size];
            assert_eq!(
                encode_request(&mut out, "POST", "/resize?w=10", HEADERS, b"{\"w\":1}"),
                Err(EncodeError::TooLarge { needed }),
                "buffer of {size}"
            );
        }
        let needed = sample_response().len();
        let mut out = vec![0; needed - 1];
        assert_eq!(
            encode_response(&mut out, 201, HEADERS, b"done"),
            Err(EncodeError::TooLarge { needed })
        );
    }

    #[test]
    fn every_truncation_is_an_error() {
        let request = sample_request();
        for end in 0..request.len() {
            assert_eq!(
                decode_request(&request[..end]).unwrap_err(),
                DecodeError::Truncated,
                "request cut at {end}"
            );
        }
        let response = sample_response();
        for end in 0..response.len() {
            assert_eq!(
                decode_response(&response[..end]).unwrap_err(),
                DecodeError::Truncated,
                "response cut at {end}"
            );
        }
    }

    #[test]
    fn trailing_bytes_are_an_error() {
        let mut request = sample_request();
        request.push(0);
        assert_eq!(
            decode_request(&request).unwrap_err(),
            DecodeError::TrailingBytes
        );
    }

    #[test]
    fn a_request_is_not_a_response() {
        assert_eq!(
            decode_response(&sample_request()).unwrap_err(),
            DecodeError::BadMagic
        );
        assert_eq!(
            decode_request(&sample_response()).unwrap_err(),
            DecodeError::BadMagic
        );
    }

    #[test]
    fn lengths_and_counts_past_the_end_are_errors() {
        // A method length of 4 GiB.
        let mut bytes = REQUEST_MAGIC.to_vec();
        bytes.extend(u32::MAX.to_le_bytes());
        bytes.extend(b"GET");
        assert_eq!(decode_request(&bytes).unwrap_err(), DecodeError::Truncated);
        // Four billion headers in a few bytes.
        let mut bytes = RESPONSE_MAGIC.to_vec();
        bytes.extend(200u16.to_le_bytes());
        bytes.extend(u32::MAX.to_le_bytes());
        bytes.extend([0; 16]);
        assert_eq!(decode_response(&bytes).unwrap_err(), DecodeError::Truncated);
    }

    #[test]
    fn a_bad_status_or_text_is_an_error() {
        let mut out = [0; 32];
        let length = encode_response(&mut out, 42, [], b"").unwrap();
        assert_eq!(
            decode_response(&out[..length]).unwrap_err(),
            DecodeError::BadStatus(42)
        );
        let mut bytes = REQUEST_MAGIC.to_vec();
        bytes.extend(1u32.to_le_bytes());
        bytes.push(0xff);
        assert_eq!(decode_request(&bytes).unwrap_err(), DecodeError::NotUtf8);
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;
        use std::string::String;

        proptest! {
            #[test]
            fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
                let _ = decode_request(&bytes).map(|request| request.headers.count());
                let _ = decode_response(&bytes).map(|response| response.headers.count());
            }

            /// Random bytes behind a valid tag and prefix exercise the length checks.
            #[test]
            fn random_fields_never_panic(tail in proptest::collection::vec(any::<u8>(), 0..256)) {
                let mut bytes = REQUEST_MAGIC.to_vec();
                bytes.extend(&tail);
                let _ = decode_request(&bytes).map(|request| request.headers.count());
                let mut bytes = RESPONSE_MAGIC.to_vec();
                bytes.extend(200u16.to_le_bytes());
                bytes.extend(&tail);
                let _ = decode_response(&bytes).map(|response| response.headers.count());
            }

            #[test]
            fn any_request_round_trips(
                method in "[A-Z]{1,8}",
                target in "/[ -~]{0,40}",
                headers in proptest::collection::vec(("[a-z-]{1,12}", proptest::collection::vec(any::<u8>(), 0..20)), 0..6),
                body in proptest::collection::vec(any::<u8>(), 0..300),
            ) {
                let pairs: Vec<(&str, &[u8])> = headers.iter().map(|(name, value)| (name.as_str(), value.as_slice())).collect();
                let mut out = vec![0; 1024];
                let length = encode_request(&mut out, &method, &target, pairs.iter().copied(), &body).unwrap();
                let request = decode_request(&out[..length]).unwrap();
                prop_assert_eq!(request.method, method.as_str());
                prop_assert_eq!(request.target, target.as_str());
                prop_assert_eq!(request.headers.collect::<Vec<_>>(), pairs);
                prop_assert_eq!(request.body, body.as_slice());
            }

            #[test]
            fn any_response_round_trips(
                status in 100u16..=999,
                headers in proptest::collection::vec(("[a-z-]{1,12}", "[ -~]{0,20}"), 0..6),
                body in proptest::collection::vec(any::<u8>(), 0..300),
            ) {
                let pairs: Vec<(&str, &[u8])> = headers.iter().map(|(name, value): &(String, String)| (name.as_str(), value.as_bytes())).collect();
                let mut out = vec![0; 1024];
                let length = encode_response(&mut out, status, pairs.iter().copied(), &body).unwrap();
                let response = decode_response(&out[..length]).unwrap();
                prop_assert_eq!(response.status, status);
                prop_assert_eq!(response.headers.collect::<Vec<_>>(), pairs);
                prop_assert_eq!(response.body, body.as_slice());
            }
        }
    }
}
