//! The HTTP/1.1 request handling of `examples/http`, shared word for word with the Linux
//! baseline server of the benchmark (`benches/http-linux`, which includes this file): the
//! two measure the same work on different kernels.
//!
//! [`respond`] takes the bytes received so far on a connection and, once they hold a whole
//! request, appends the response to `out` and says how many bytes the request took and
//! whether the connection stays open. Parsing is `httparse`'s.
//!
//! - keep-alive: HTTP/1.1 keeps the connection unless the request says `Connection: close`;
//!   HTTP/1.0 closes it unless the request says `Connection: keep-alive`;
//! - `Content-Length` on every response, `HEAD` answered without a body;
//! - 400 for a malformed request, 404 for an unknown path, 405 for a method other than GET
//!   and HEAD, 413 for a request larger than [`MAX_HEAD`] or [`MAX_BODY`] (then the
//!   connection closes: the rest of the request is not read), 501 for chunked bodies;
//! - the body's framing is never guessed (RFC 9112 §6.3, against request smuggling behind
//!   a proxy): a `Content-Length` that is not all digits (`+5`, `-1`, `5 5`), two that
//!   differ, or one together with `Transfer-Encoding` get 400 and the connection closes.

use alloc::vec::Vec;
use core::fmt::Write as _;

/// The largest request line and headers accepted.
pub const MAX_HEAD: usize = 8 * 1024;
/// The largest request body accepted (and discarded: no route takes one).
pub const MAX_BODY: usize = 64 * 1024;
/// The most headers a request may have.
const MAX_HEADERS: usize = 32;

/// The page at `/`.
pub const INDEX: &[u8] = b"<!doctype html>\n<html><head><title>unikernel</title></head>\n\
<body><h1>Hello from a unikernel</h1><p>Served by examples/http.</p></body></html>\n";

/// What [`respond`] did with the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// No whole request yet: read more (the input is within the limits).
    Incomplete,
    /// A response was appended; the request took `consumed` bytes of the input.
    Responded { consumed: usize, keep_alive: bool },
}

/// Whether `input` holds a whole request head (it ends at the first empty line), so that
/// the request can be answered, or refused, at once.
pub fn head_is_complete(input: &[u8]) -> bool {
    input.windows(4).any(|w| w == b"\r\n\r\n")
}

/// Answers the request at the start of `input`, if it is complete. `dynamic` answers the
/// paths the host program adds (it returns the body, served as plain text).
pub fn respond(
    input: &[u8],
    out: &mut Vec<u8>,
    dynamic: &dyn Fn(&str) -> Option<Vec<u8>>,
) -> Outcome {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    let head_len = match request.parse(input) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if input.len() > MAX_HEAD => {
            return error(out, 413, "request headers too large");
        }
        Ok(httparse::Status::Partial) => return Outcome::Incomplete,
        Err(httparse::Error::TooManyHeaders) => return error(out, 413, "too many headers"),
        Err(_) => return error(out, 400, "malformed request"),
    };
    if head_len > MAX_HEAD {
        return error(out, 413, "request headers too large");
    }
    let (Some(method), Some(path), Some(version)) = (request.method, request.path, request.version)
    else {
        return error(out, 400, "malformed request");
    };

    let mut content_length: Option<&[u8]> = None;
    let mut transfer_encoding = false;
    let mut connection_close = false;
    let mut connection_keep_alive = false;
    for header in request.headers.iter() {
        if header.name.eq_ignore_ascii_case("content-length") {
            let value = header.value.trim_ascii();
            if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
                return error(out, 400, "bad Content-Length");
            }
            match content_length {
                Some(earlier) if earlier != value => {
                    return error(out, 400, "conflicting Content-Length headers");
                }
                _ => content_length = Some(value),
            }
        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
            transfer_encoding = true;
        } else if header.name.eq_ignore_ascii_case("connection") {
            for token in header.value.split(|&b| b == b',') {
                let token = token.trim_ascii();
                connection_close |= token.eq_ignore_ascii_case(b"close");
                connection_keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
            }
        }
    }
    if transfer_encoding && content_length.is_some() {
        return error(out, 400, "both Transfer-Encoding and Content-Length");
    }
    if transfer_encoding {
        return error(out, 501, "chunked request bodies are not supported");
    }
    // All digits: only a value too large for `usize` fails to parse.
    let body_len = match content_length {
        None => 0,
        Some(digits) => match core::str::from_utf8(digits).map(str::parse::<usize>) {
            Ok(Ok(len)) if len <= MAX_BODY => len,
            _ => return error(out, 413, "request body too large"),
        },
    };
    let consumed = head_len + body_len;
    if input.len() < consumed {
        return Outcome::Incomplete;
    }
    let keep_alive = match version {
        0 => connection_keep_alive && !connection_close,
        _ => !connection_close,
    };

    let head = method == "HEAD";
    let (status, content_type, body): (u16, &str, Vec<u8>) = match (method, path) {
        ("GET" | "HEAD", "/" | "/index.html") => (200, "text/html", INDEX.to_vec()),
        ("GET" | "HEAD", path) => match dynamic(path) {
            Some(body) => (200, "text/plain", body),
            None => (404, "text/plain", b"not found\n".to_vec()),
        },
        _ => (405, "text/plain", b"method not allowed\n".to_vec()),
    };
    write_response(out, status, content_type, &body, head, keep_alive);
    Outcome::Responded {
        consumed,
        keep_alive,
    }
}

fn error(out: &mut Vec<u8>, status: u16, message: &str) -> Outcome {
    let mut body = Vec::with_capacity(message.len() + 1);
    body.extend_from_slice(message.as_bytes());
    body.push(b'\n');
    write_response(out, status, "text/plain", &body, false, false);
    Outcome::Responded {
        consumed: 0,
        keep_alive: false,
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Content Too Large",
        501 => "Not Implemented",
        _ => "Unknown",
    }
}

fn write_response(
    out: &mut Vec<u8>,
    status: u16,
    content_type: &str,
    body: &[u8],
    head: bool,
    keep_alive: bool,
) {
    let mut text = Buffer(out);
    let _ = write!(
        text,
        "HTTP/1.1 {status} {}\r\nServer: unikernel-http\r\nContent-Type: {content_type}\r\n\
         Content-Length: {}\r\n",
        reason(status),
        body.len()
    );
    if status == 405 {
        let _ = write!(text, "Allow: GET, HEAD\r\n");
    }
    if !keep_alive {
        let _ = write!(text, "Connection: close\r\n");
    }
    let _ = write!(text, "\r\n");
    if !head {
        out.extend_from_slice(body);
    }
}

/// `fmt::Write` into a byte vector.
struct Buffer<'a>(&'a mut Vec<u8>);

impl core::fmt::Write for Buffer<'_> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::String;

    fn answer(input: &[u8]) -> (Outcome, String) {
        let mut out = Vec::new();
        let outcome = respond(input, &mut out, &|path| {
            (path == "/stats").then(|| b"used 1\n".to_vec())
        });
        (outcome, String::from_utf8(out).unwrap())
    }

    #[test]
    fn serves_the_page_with_its_length() {
        let request = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        let (outcome, text) = answer(request);
        assert_eq!(
            outcome,
            Outcome::Responded {
                consumed: request.len(),
                keep_alive: true
            }
        );
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
        assert!(text.contains(&alloc::format!("Content-Length: {}\r\n", INDEX.len())));
        assert!(text.ends_with(core::str::from_utf8(INDEX).unwrap()));
        assert!(!text.contains("Connection: close"));
    }

    #[test]
    fn head_has_the_length_but_no_body() {
        let (_, text) = answer(b"HEAD / HTTP/1.1\r\n\r\n");
        assert!(text.contains(&alloc::format!("Content-Length: {}\r\n", INDEX.len())));
        assert!(text.ends_with("\r\n\r\n"));
    }

    #[test]
    fn waits_for_the_whole_request() {
        assert_eq!(answer(b"GET / HTTP/1.1\r\nHost:").0, Outcome::Incomplete);
        assert_eq!(
            answer(b"GET / HTTP/1.1\r\nContent-Length: 5\r\n\r\nab").0,
            Outcome::Incomplete
        );
    }

    #[test]
    fn every_prefix_of_a_request_waits_for_the_rest() {
        // A client's head may arrive in any number of segments.
        let request = b"GET /static/big.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        for end in 0..request.len() {
            assert_eq!(
                answer(&request[..end]).0,
                Outcome::Incomplete,
                "{:?}",
                core::str::from_utf8(&request[..end])
            );
        }
    }

    #[test]
    fn pipelined_requests_are_taken_one_at_a_time() {
        let one = b"GET /missing HTTP/1.1\r\n\r\n";
        let mut two = one.to_vec();
        two.extend_from_slice(b"GET / HTTP/1.1\r\n\r\n");
        let (outcome, text) = answer(&two);
        assert_eq!(
            outcome,
            Outcome::Responded {
                consumed: one.len(),
                keep_alive: true
            }
        );
        assert!(text.starts_with("HTTP/1.1 404 Not Found\r\n"));
    }

    #[test]
    fn connection_headers_decide_keep_alive() {
        let close = answer(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n");
        assert!(matches!(
            close.0,
            Outcome::Responded {
                keep_alive: false,
                ..
            }
        ));
        assert!(close.1.contains("Connection: close\r\n"));
        let old = answer(b"GET / HTTP/1.0\r\n\r\n");
        assert!(matches!(
            old.0,
            Outcome::Responded {
                keep_alive: false,
                ..
            }
        ));
        let old_kept = answer(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
        assert!(matches!(
            old_kept.0,
            Outcome::Responded {
                keep_alive: true,
                ..
            }
        ));
    }

    #[test]
    fn malformed_requests_get_400_and_close() {
        for bad in [
            &b"GARBAGE\r\n\r\n"[..],
            b"GET / HTTP/9.9\r\n\r\n",
            b"GET / HTTP/1.1\r\nBad Header\r\n\r\n",
            b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n",
        ] {
            let (outcome, text) = answer(bad);
            assert!(text.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{text}");
            assert!(matches!(
                outcome,
                Outcome::Responded {
                    keep_alive: false,
                    ..
                }
            ));
        }
    }

    fn status_of(input: &[u8]) -> (u16, Outcome) {
        let (outcome, text) = answer(input);
        let status = text
            .strip_prefix("HTTP/1.1 ")
            .and_then(|rest| rest.get(..3))
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("no status in {text:?}"));
        (status, outcome)
    }

    #[test]
    fn ambiguous_body_lengths_get_400_and_close() {
        for bad in [
            &b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"[..],
            b"POST / HTTP/1.1\r\nContent-Length: 0\r\nContent-Length: 5\r\n\r\nhello",
            b"POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\nhello",
            b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: 5 5\r\n\r\nhello",
            b"POST / HTTP/1.1\r\nContent-Length: 0x5\r\n\r\nhello",
            b"POST / HTTP/1.1\r\nContent-Length: 5,5\r\n\r\nhello",
            b"POST / HTTP/1.1\r\nContent-Length:\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
        ] {
            let (status, outcome) = status_of(bad);
            let shown = String::from_utf8_lossy(bad);
            assert_eq!(status, 400, "{shown}");
            assert_eq!(
                outcome,
                Outcome::Responded {
                    consumed: 0,
                    keep_alive: false
                },
                "{shown}"
            );
        }
    }

    #[test]
    fn plain_body_lengths_are_taken() {
        // The same length twice is one length (RFC 9110 §8.6 allows either answer).
        let twice = b"POST /x HTTP/1.1\r\nContent-Length: 5\r\ncontent-length: 5\r\n\r\nhello";
        assert_eq!(
            status_of(twice),
            (
                405,
                Outcome::Responded {
                    consumed: twice.len(),
                    keep_alive: true
                }
            )
        );
        let zeros = b"POST /x HTTP/1.1\r\nContent-Length: 005\r\n\r\nhello";
        assert!(matches!(
            status_of(zeros),
            (405, Outcome::Responded { consumed, .. }) if consumed == zeros.len()
        ));
        // Too long to be a number at all: too large, not malformed.
        let huge = b"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999999\r\n\r\n";
        assert_eq!(status_of(huge).0, 413);
        let chunked = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(status_of(chunked).0, 501);
    }

    #[test]
    fn oversized_requests_get_413() {
        let (_, text) = answer(b"POST / HTTP/1.1\r\nContent-Length: 10000000\r\n\r\n");
        assert!(
            text.starts_with("HTTP/1.1 413 Content Too Large\r\n"),
            "{text}"
        );
        let mut huge = b"GET / HTTP/1.1\r\nX-Long: ".to_vec();
        huge.resize(MAX_HEAD + 100, b'a');
        let (_, text) = answer(&huge);
        assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    }

    #[test]
    fn unknown_paths_and_methods() {
        assert!(
            answer(b"GET /nope HTTP/1.1\r\n\r\n")
                .1
                .starts_with("HTTP/1.1 404 Not Found")
        );
        let (_, text) = answer(b"DELETE / HTTP/1.1\r\n\r\n");
        assert!(text.starts_with("HTTP/1.1 405"));
        assert!(text.contains("Allow: GET, HEAD\r\n"));
        assert!(
            answer(b"GET /stats HTTP/1.1\r\n\r\n")
                .1
                .ends_with("used 1\n")
        );
    }
}
