//! `GET /static/<path>`: files from the initrd (`fs`), with a Content-Type from the name's
//! extension. The initrd's root is the folder `static/` of this example (packed by the
//! runner, see Cargo.toml), so `/static/css/site.css` is the initrd's `css/site.css`.
//!
//! - A directory is served as its `index.html`, if it has one.
//! - 404 for anything missing, and for a path with a `..` or `.` segment, a backslash or a
//!   NUL: no path leaves the root (the file system's lookups also stop at its root, so
//!   there is nothing above it to reach).
//! - Only GET and HEAD without a body are taken here; everything else goes to the handler.

use alloc::vec::Vec;
use core::fmt::Write as _;

use unikernel::fs::Fs;

use crate::handler::{MAX_HEAD, Outcome};

const PREFIX: &str = "/static/";
const MAX_HEADERS: usize = 32;

/// Answers a `/static/` request at the start of `input`: the head goes to `out`, the body
/// (GET) to `body_out`, still in the initrd's pages, for the caller to send as the socket
/// drains (a file of any size costs a connection no heap). `None` leaves it to the handler
/// (another path, an incomplete or malformed request, a method other than GET or HEAD, a
/// request with a body).
pub fn respond(
    input: &[u8],
    out: &mut Vec<u8>,
    body_out: &mut &'static [u8],
    fs: &Fs,
) -> Option<Outcome> {
    // Other paths are the handler's, without a second parse of their heads.
    let target = input
        .strip_prefix(b"GET ")
        .or_else(|| input.strip_prefix(b"HEAD "))?;
    if !target.starts_with(PREFIX.as_bytes()) {
        return None;
    }
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    let Ok(httparse::Status::Complete(head_len)) = request.parse(input) else {
        return None;
    };
    let (Some(method @ ("GET" | "HEAD")), Some(target), Some(version)) =
        (request.method, request.path, request.version)
    else {
        return None;
    };
    let path = target.strip_prefix(PREFIX)?;
    if head_len > MAX_HEAD {
        return None;
    }
    let mut close = false;
    let mut keep_alive = false;
    for header in request.headers.iter() {
        let name = header.name;
        if name.eq_ignore_ascii_case("content-length") && header.value.trim_ascii() != b"0"
            || name.eq_ignore_ascii_case("transfer-encoding")
        {
            return None;
        }
        if name.eq_ignore_ascii_case("connection") {
            for token in header.value.split(|&b| b == b',') {
                close |= token.trim_ascii().eq_ignore_ascii_case(b"close");
                keep_alive |= token.trim_ascii().eq_ignore_ascii_case(b"keep-alive");
            }
        }
    }
    let keep_alive = match version {
        0 => keep_alive && !close,
        _ => !close,
    };

    let path = path.split(['?', '#']).next().unwrap_or_default();
    let (status, content_type, body) = match lookup(fs, path) {
        Some((name, bytes)) => (200, content_type(name), bytes),
        None => (404, "text/plain", &b"not found\n"[..]),
    };
    let reason = if status == 200 { "OK" } else { "Not Found" };
    let mut head = alloc::string::String::new();
    let _ = write!(
        head,
        "HTTP/1.1 {status} {reason}\r\nServer: unikernel-http\r\nContent-Type: {content_type}\r\n\
         Content-Length: {}\r\n{}\r\n",
        body.len(),
        if keep_alive {
            ""
        } else {
            "Connection: close\r\n"
        }
    );
    out.extend_from_slice(head.as_bytes());
    if method == "GET" {
        // Sent from the initrd's pages as the socket drains, not copied.
        *body_out = body;
    }
    Some(Outcome::Responded {
        consumed: head_len,
        keep_alive,
    })
}

/// The file at `path` under the root (its name and bytes, in the initrd's pages), or
/// `None` for a missing file or a path that tries to climb.
fn lookup(fs: &Fs, path: &str) -> Option<(&'static str, &'static [u8])> {
    let suspicious = path
        .split('/')
        .any(|segment| segment == ".." || segment == ".")
        || path.contains(['\\', '\0']);
    if suspicious {
        return None;
    }
    let metadata = fs.metadata(path).ok()?;
    if metadata.is_dir() {
        let index = alloc::format!("{}/index.html", path.trim_end_matches('/'));
        return fs.bytes(&index).ok().map(|bytes| ("index.html", bytes));
    }
    let bytes = fs.bytes(path).ok()?;
    // `path` borrows the request; the extension is all that is kept of it.
    let name = match path.rsplit_once('.') {
        Some((_, extension)) => extension_name(extension),
        None => "",
    };
    Some((name, bytes))
}

/// The extensions this server knows, as `'static` names for [`content_type`].
fn extension_name(extension: &str) -> &'static str {
    const KNOWN: &[&str] = &[
        "html", "htm", "css", "js", "mjs", "json", "txt", "md", "csv", "xml", "svg", "png", "jpg",
        "jpeg", "gif", "webp", "ico", "wasm", "pdf", "woff", "woff2",
    ];
    KNOWN
        .iter()
        .find(|known| known.eq_ignore_ascii_case(extension))
        .map_or("", |known| known)
}

/// The Content-Type of a file by its extension (`name` is a file name or an extension).
fn content_type(name: &str) -> &'static str {
    let extension = name.rsplit('.').next().unwrap_or_default();
    match extension {
        "html" | "htm" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "json" => "application/json",
        "txt" | "md" => "text/plain; charset=utf-8",
        "csv" => "text/csv; charset=utf-8",
        "xml" => "application/xml",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "ico" => "image/x-icon",
        "wasm" => "application/wasm",
        "pdf" => "application/pdf",
        "woff" => "font/woff",
        "woff2" => "font/woff2",
        _ => "application/octet-stream",
    }
}
