//! The `function` subsystem: the image answers HTTP requests that the host's gateway
//! (`cargo uk serve`) hands it over the monitor's request channel, one at a time, instead
//! of running a `main` to its end. `#[unikernel::function]` declares it; the channel's
//! protocol and wire encoding are `unikernel_abi::function`'s.
//!
//! ```ignore
//! fn hello(request: Request) -> Response {
//!     Response::text(format!("hello, {}", request.query_param("name").unwrap_or("world")))
//! }
//! ```
//!
//! [`init`] checks that the VMM offers the channel (the project's monitor, started by the
//! gateway; QEMU has no such device, and the boot ends saying so) and sets aside the
//! request buffer: `max_request` bytes, outside the heap. [`Function::serve`] then loops:
//! hand over the previous response (none the first time: that exit is where the gateway
//! snapshots the VM), receive a request, reseed and set the clock from it (the hooks of the
//! subsystems the image declares), call the handler, encode its response. A response that
//! does not fit the buffer becomes a short 500; a handler that panics ends the VM like any
//! panic, and the gateway answers 502.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

mod headers;
mod request;
mod response;

use alloc::format;
use core::cell::Cell;
use core::fmt;

pub use headers::Headers;
pub use request::Request;
pub use response::{IntoResponse, Response};
pub use unikernel_abi::function as abi;

use abi::{Mailbox, REQUEST, RESPONSE, WAITING};
use unikernel_arch::hypervisor::{self, ExchangeError};

/// Default size of the request buffer, which bounds requests and responses alike.
pub const DEFAULT_MAX_REQUEST: usize = 1 << 20;

/// Why the function subsystem could not start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InitError {
    /// The VMM has no request channel.
    NoChannel,
    /// The VM's memory has no room for the request buffer.
    NoMemory { max_request: usize },
}

impl fmt::Display for InitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InitError::NoChannel => f.write_str(
                "this image is a function and takes its requests from the project's KVM monitor, which is not running it: serve it with `cargo uk serve`",
            ),
            InitError::NoMemory { max_request } => write!(
                f,
                "no room for the {max_request}-byte request buffer: give the VM more memory or declare a smaller `max_request`"
            ),
        }
    }
}

/// Something a subsystem does before each request with what the host sent along: `rand`
/// reseeds (VMs restored from one snapshot would otherwise draw the same numbers), `clock`
/// sets the wall-clock time (a restored VM's would be the snapshot's).
pub trait RequestHook: Sync {
    fn before_request(&self, seed: &[u8; 32], wall_ns: u64);
}

/// How many subsystems may hook requests.
const MAX_HOOKS: usize = 4;

/// The handle of the function subsystem: [`serve`](Function::serve) answers requests.
pub struct Function {
    buffer: &'static mut [u8],
    hooks: Cell<[Option<&'static dyn RequestHook>; MAX_HOOKS]>,
}

impl fmt::Debug for Function {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Function")
            .field("max_request", &self.buffer.len())
            .finish_non_exhaustive()
    }
}

/// Checks for the request channel and sets aside a buffer of `max_request` bytes (which
/// bounds requests and responses alike).
pub fn init(max_request: usize) -> Result<Function, InitError> {
    if !hypervisor::has_function_channel() {
        return Err(InitError::NoChannel);
    }
    let buffer = hypervisor::function_buffer(max_request)
        .map_err(|_| InitError::NoMemory { max_request })?;
    Ok(Function {
        buffer,
        hooks: Cell::new([None; MAX_HOOKS]),
    })
}

impl Function {
    /// The size of the request buffer: the largest request, and response, in bytes.
    pub fn max_request(&self) -> usize {
        self.buffer.len()
    }

    /// Runs `hook` before every request (called by the generated boot code for the
    /// subsystems that have one).
    ///
    /// # Panics
    /// With more than four hooks.
    pub fn add_hook(&self, hook: &'static dyn RequestHook) {
        let mut hooks = self.hooks.get();
        let slot = hooks
            .iter_mut()
            .find(|slot| slot.is_none())
            .expect("function: more request hooks than subsystems have");
        *slot = Some(hook);
        self.hooks.set(hooks);
    }

    /// Answers requests with `handler`, for good: the gateway ends the VM after the
    /// response (modes `fresh` and `snapshot`) or sends the next request (mode `warm`).
    pub fn serve(self, mut handler: impl FnMut(Request) -> Response) -> ! {
        let Function { buffer, hooks } = self;
        let hooks = hooks.get();
        let mut mailbox = Mailbox {
            state: WAITING,
            ..Mailbox::default()
        };
        loop {
            match hypervisor::function_exchange(&mut mailbox, buffer) {
                Ok(()) => {}
                Err(ExchangeError::NoChannel) => panic!("function: {}", InitError::NoChannel),
                Err(ExchangeError::NotAddressable) => {
                    panic!(
                        "function: the mailbox lies above 4 GiB, where the monitor cannot reach it"
                    )
                }
            }
            let length = received_length(&mailbox, buffer.len());
            for hook in hooks.iter().flatten() {
                hook.before_request(&mailbox.seed, mailbox.wall_ns);
            }
            mailbox.length = answer(buffer, length, &mut handler) as u64;
            mailbox.state = RESPONSE;
            mailbox.flags = 0;
        }
    }
}

/// The length of the request the monitor says it wrote; a mailbox that breaks the protocol
/// ends the VM (a fault of the host, reported by the panic).
fn received_length(mailbox: &Mailbox, capacity: usize) -> usize {
    assert!(
        mailbox.state == REQUEST,
        "function: the monitor resumed the guest with mailbox state {}, not a request",
        mailbox.state
    );
    match usize::try_from(mailbox.length) {
        Ok(length) if length <= capacity => length,
        _ => panic!(
            "function: the monitor's request of {} bytes overruns the {capacity}-byte buffer",
            mailbox.length
        ),
    }
}

/// Decodes the request in `buffer[..length]`, runs `handler` on it and encodes its response
/// into `buffer`; returns the response's length. A request that does not decode is answered
/// 400, a response that does not fit the buffer or has an impossible status 500, each with
/// a short text saying why.
pub fn answer(
    buffer: &mut [u8],
    length: usize,
    handler: &mut impl FnMut(Request) -> Response,
) -> usize {
    let response = match abi::decode_request(&buffer[..length.min(buffer.len())]) {
        Ok(view) => handler(Request::from_view(view)),
        Err(error) => Response::status(400).with_text(format!("malformed request: {error}")),
    };
    let response = if (100..=999).contains(&response.status_code()) {
        response
    } else {
        Response::status(500).with_text(format!(
            "the function answered status {}, outside 100-999",
            response.status_code()
        ))
    };
    match encode(buffer, &response) {
        Ok(length) => length,
        Err(abi::EncodeError::TooLarge { needed }) => {
            let capacity = buffer.len();
            let short = Response::status(500).with_text(format!(
                "the response needs {needed} bytes, more than the function's {capacity}-byte buffer (`max_request`)"
            ));
            // A buffer too small for even this says nothing more; the gateway gets an
            // empty response, which it reports as malformed.
            encode(buffer, &short).unwrap_or(0)
        }
    }
}

fn encode(buffer: &mut [u8], response: &Response) -> Result<usize, abi::EncodeError> {
    abi::encode_response(
        buffer,
        response.status_code(),
        response.headers().iter(),
        response.body(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::borrow::ToOwned;
    use alloc::vec;
    use alloc::vec::Vec;

    fn request_into(buffer: &mut [u8], method: &str, target: &str, body: &[u8]) -> usize {
        abi::encode_request(buffer, method, target, [("x-tag", &b"7"[..])], body).unwrap()
    }

    #[test]
    fn a_request_reaches_the_handler_and_its_response_the_buffer() {
        let mut buffer = vec![0; 4096];
        let length = request_into(&mut buffer, "POST", "/echo?loud=1", b"ping");
        let mut seen = Vec::new();
        let written = answer(&mut buffer, length, &mut |request: Request| {
            seen.push((
                request.method().to_owned(),
                request.path().to_owned(),
                request.query_param("loud").map(str::to_owned),
                request.header("X-Tag").map(str::to_owned),
            ));
            Response::bytes(request.into_body()).with_status(201)
        });
        assert_eq!(
            seen,
            [(
                "POST".into(),
                "/echo".into(),
                Some("1".into()),
                Some("7".into())
            )]
        );
        let response = abi::decode_response(&buffer[..written]).unwrap();
        assert_eq!(response.status, 201);
        assert_eq!(response.body, b"ping");
    }

    #[test]
    fn a_response_too_large_is_a_short_500() {
        let mut buffer = vec![0; 256];
        let length = request_into(&mut buffer, "GET", "/big", b"");
        let written = answer(&mut buffer, length, &mut |_| Response::bytes(vec![7; 1000]));
        let response = abi::decode_response(&buffer[..written]).unwrap();
        assert_eq!(response.status, 500);
        let text = core::str::from_utf8(response.body).unwrap();
        assert!(text.contains("256-byte buffer"), "{text}");
    }

    #[test]
    fn a_malformed_request_is_a_400_and_the_handler_is_not_called() {
        let mut buffer = vec![0xaa; 256];
        let written = answer(&mut buffer, 100, &mut |_| panic!("called"));
        let response = abi::decode_response(&buffer[..written]).unwrap();
        assert_eq!(response.status, 400);
    }

    #[test]
    fn an_impossible_status_is_a_500() {
        let mut buffer = vec![0; 256];
        let length = request_into(&mut buffer, "GET", "/", b"");
        let written = answer(&mut buffer, length, &mut |_| Response::status(42));
        assert_eq!(
            abi::decode_response(&buffer[..written]).unwrap().status,
            500
        );
    }

    #[test]
    fn a_mailbox_that_breaks_the_protocol_is_refused() {
        let ok = Mailbox {
            state: REQUEST,
            length: 10,
            ..Mailbox::default()
        };
        assert_eq!(received_length(&ok, 10), 10);
        let overrun = Mailbox { length: 11, ..ok };
        assert!(std::panic::catch_unwind(|| received_length(&overrun, 10)).is_err());
        let waiting = Mailbox {
            state: WAITING,
            ..ok
        };
        assert!(std::panic::catch_unwind(|| received_length(&waiting, 10)).is_err());
    }

    extern crate std;
}
