//! The host end of the request channel of function images (`unikernel_abi::function`):
//! [`Channel`] serves the port, [`Vm::call`] puts one request into a guest and takes its
//! response, with a deadline.
//!
//! Every value read from the guest is checked: the mailbox's address and alignment, its
//! state, the buffer inside guest memory, the length within the capacity. A guest that
//! breaks the protocol ends its VM with [`CallError::Protocol`].

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use unikernel_abi::function::{MAILBOX_SIZE, Mailbox, REQUEST, RESPONSE, WAITING};
use vm_memory::{Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryMmap};

use crate::control::{self, Control};
use crate::error::Error;
use crate::vm::{Exchange, FunctionServer, Vm, VmExit};
use crate::{FaultKind, sandbox};

/// The most console output a call keeps (a guest's report is its last words).
const OUTPUT_MAX: usize = 64 * 1024;

/// Why a call gave no response.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The deadline passed; the VM was stopped.
    #[error("the function did not answer within {0:?}")]
    Timeout(Duration),
    /// The guest ended or faulted instead of answering: a panic, a fault, an exit.
    /// `report` says how (with its console output).
    #[error("the function failed: {report}")]
    Guest { report: String },
    /// The guest broke the channel's protocol (the sentence says how).
    #[error("the function broke the request channel's protocol: {0}")]
    Protocol(String),
    /// The request does not fit the guest's buffer.
    #[error("the request has {length} bytes, the function's buffer {capacity}")]
    TooLarge { length: usize, capacity: u64 },
    /// The monitor could not run the VM.
    #[error(transparent)]
    Monitor(#[from] Error),
}

/// A response and what it cost.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The response's wire encoding, as the guest wrote it (decode it with
    /// `unikernel_abi::function::decode_response`).
    pub response: Vec<u8>,
    /// What the guest printed meanwhile.
    pub output: Vec<u8>,
    /// From the first KVM_RUN to the exit with the response.
    pub guest: Duration,
}

/// A request waiting for the guest's next exit.
struct Pending {
    bytes: Vec<u8>,
    seed: [u8; 32],
    wall_ns: u64,
}

#[derive(Default)]
struct Shared {
    /// Where the guest waits for a request (known after its first exit, or from a
    /// snapshot).
    parked: Option<u64>,
    pending: Option<Pending>,
    response: Option<Vec<u8>>,
    violation: Option<String>,
    too_large: Option<(usize, u64)>,
}

/// The request channel of one VM; [`Channel::server`] goes to the VM.
#[derive(Clone, Default)]
pub struct Channel {
    shared: Arc<Mutex<Shared>>,
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channel")
            .field("parked", &self.lock().parked)
            .finish()
    }
}

impl Channel {
    pub fn new() -> Channel {
        Channel::default()
    }

    /// A channel whose guest already waits with its mailbox at `mailbox` (a VM restored
    /// from a snapshot taken at its first `WAITING`).
    pub fn parked_at(mailbox: u64) -> Channel {
        let channel = Channel::new();
        channel.lock().parked = Some(mailbox);
        channel
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Where the guest waits for a request, if it does.
    pub fn mailbox(&self) -> Option<u64> {
        self.lock().parked
    }

    /// The port's server, for [`Vm::serve_function`] or [`Vm::restore`].
    pub fn server(&self) -> FunctionServer {
        let shared = Arc::clone(&self.shared);
        Box::new(move |memory, address| {
            let mut shared = shared.lock().unwrap_or_else(|p| p.into_inner());
            let result = exchange(&mut shared, memory, address);
            if let Err(what) = &result {
                shared.violation = Some(what.clone());
            }
            result
        })
    }
}

/// One exit at the port.
fn exchange(
    shared: &mut Shared,
    memory: &GuestMemoryMmap,
    address: u64,
) -> Result<Exchange, String> {
    let mailbox = read_mailbox(memory, address)?;
    shared.parked = None;
    match mailbox.state {
        WAITING => match shared.pending.take() {
            Some(pending) => {
                match deliver(memory, address, &mailbox, &pending) {
                    Ok(()) => {}
                    Err(Delivery::TooLarge) => {
                        shared.too_large = Some((pending.bytes.len(), mailbox.capacity));
                        shared.parked = Some(address);
                        return Ok(Exchange::Stop);
                    }
                    Err(Delivery::Bad(what)) => return Err(what),
                }
                Ok(Exchange::Resume)
            }
            None => {
                shared.parked = Some(address);
                Ok(Exchange::Stop)
            }
        },
        RESPONSE => {
            let length = checked_buffer(memory, &mailbox, mailbox.length)?;
            let mut response = vec![0; length];
            memory
                .read_slice(&mut response, GuestAddress(mailbox.buffer))
                .map_err(|_| "its response lies outside its memory".to_string())?;
            shared.response = Some(response);
            shared.parked = Some(address);
            Ok(Exchange::Stop)
        }
        other => Err(format!(
            "its mailbox's state is {other} at an exit (WAITING {WAITING} or RESPONSE {RESPONSE} expected)"
        )),
    }
}

fn read_mailbox(memory: &GuestMemoryMmap, address: u64) -> Result<Mailbox, String> {
    if !address.is_multiple_of(8) {
        return Err(format!("its mailbox at {address:#x} is not 8-byte aligned"));
    }
    let mut bytes = [0; MAILBOX_SIZE];
    memory
        .read_slice(&mut bytes, GuestAddress(address))
        .map_err(|_| format!("its mailbox at {address:#x} lies outside its memory"))?;
    Ok(Mailbox::from_bytes(bytes))
}

/// Checks that `length` bytes at the mailbox's buffer are within its capacity and inside
/// guest memory.
fn checked_buffer(
    memory: &GuestMemoryMmap,
    mailbox: &Mailbox,
    length: u64,
) -> Result<usize, String> {
    if length > mailbox.capacity {
        return Err(format!(
            "a length of {length} bytes in a buffer of {}",
            mailbox.capacity
        ));
    }
    let inside = mailbox
        .buffer
        .checked_add(mailbox.capacity)
        .is_some_and(|end| memory.address_in_range(GuestAddress(end.saturating_sub(1))))
        && memory.address_in_range(GuestAddress(mailbox.buffer));
    if !inside {
        return Err(format!(
            "its buffer of {} bytes at {:#x} lies outside its memory",
            mailbox.capacity, mailbox.buffer
        ));
    }
    usize::try_from(length).map_err(|_| format!("a length of {length} bytes"))
}

enum Delivery {
    TooLarge,
    Bad(String),
}

/// Writes `pending` into the guest's buffer and mailbox.
fn deliver(
    memory: &GuestMemoryMmap,
    address: u64,
    mailbox: &Mailbox,
    pending: &Pending,
) -> Result<(), Delivery> {
    if pending.bytes.len() as u64 > mailbox.capacity {
        return Err(Delivery::TooLarge);
    }
    checked_buffer(memory, mailbox, pending.bytes.len() as u64).map_err(Delivery::Bad)?;
    memory
        .write_slice(&pending.bytes, GuestAddress(mailbox.buffer))
        .map_err(|_| Delivery::Bad("its buffer lies outside its memory".into()))?;
    let request = Mailbox {
        state: REQUEST,
        length: pending.bytes.len() as u64,
        seed: pending.seed,
        wall_ns: pending.wall_ns,
        ..*mailbox
    };
    memory
        .write_slice(&request.to_bytes(), GuestAddress(address))
        .map_err(|_| {
            Delivery::Bad(format!(
                "its mailbox at {address:#x} lies outside its memory"
            ))
        })
}

impl Vm {
    /// Runs the guest until it waits for its first request (the snapshot point), at most
    /// `timeout`; the channel then knows its mailbox.
    pub fn run_until_waiting(
        &mut self,
        channel: &Channel,
        timeout: Duration,
    ) -> Result<Duration, CallError> {
        let start = Instant::now();
        if channel.mailbox().is_none() {
            let (exit, output, stopped) = self.run_confined(timeout)?;
            if let Some(err) = failure(channel, exit, output, stopped, timeout) {
                return Err(err);
            }
        }
        match channel.mailbox() {
            Some(_) => Ok(start.elapsed()),
            None => Err(CallError::Protocol(
                "it stopped without waiting for a request".into(),
            )),
        }
    }

    /// Hands `request` (its wire encoding) to the guest with fresh randomness and the
    /// host's time, and returns the guest's response, or why there is none, within
    /// `timeout`. The VM must serve `channel` (see [`Channel::server`]); after a response
    /// the guest waits for the next request (mode `warm`).
    pub fn call(
        &mut self,
        channel: &Channel,
        request: &[u8],
        timeout: Duration,
    ) -> Result<Reply, CallError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed)
            .map_err(|err| Error::Device(format!("no randomness for the guest: {err}")))?;
        let pending = Pending {
            bytes: request.to_vec(),
            seed,
            wall_ns: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0),
        };
        {
            let mut shared = channel.lock();
            shared.response = None;
            shared.violation = None;
            shared.too_large = None;
            self.offer(&mut shared, pending)?;
        }
        let start = Instant::now();
        let (exit, output, stopped) = self.run_confined(timeout)?;
        let guest = start.elapsed();
        let mut shared = channel.lock();
        if let Some((length, capacity)) = shared.too_large.take() {
            return Err(CallError::TooLarge { length, capacity });
        }
        match shared.response.take() {
            Some(response) if exit == VmExit::Stopped && !stopped => Ok(Reply {
                response,
                output,
                guest,
            }),
            _ => {
                drop(shared);
                Err(failure(channel, exit, output, stopped, timeout)
                    .unwrap_or_else(|| CallError::Protocol("it stopped without a response".into())))
            }
        }
    }

    /// Hands `pending` to the guest: into its mailbox now if it sits in its port write,
    /// else kept for its next wait.
    fn offer(&self, shared: &mut Shared, pending: Pending) -> Result<(), CallError> {
        let Some(address) = shared.parked else {
            shared.pending = Some(pending);
            return Ok(());
        };
        let mailbox = read_mailbox(&self.mem, address).map_err(CallError::Protocol)?;
        match deliver(&self.mem, address, &mailbox, &pending) {
            Ok(()) => {
                shared.parked = None;
                Ok(())
            }
            Err(Delivery::TooLarge) => Err(CallError::TooLarge {
                length: pending.bytes.len(),
                capacity: mailbox.capacity,
            }),
            Err(Delivery::Bad(what)) => Err(CallError::Protocol(what)),
        }
    }

    /// Counts the guest's instructions: single-steps the vCPU (one exit per instruction,
    /// slow) until it waits at the channel, after handing it `request` if there is one.
    /// Returns the count and the reply (`None` when it only ran to its first wait). For
    /// measurements (how much of a request's time is the guest's own work), not serving.
    pub fn count_instructions(
        &mut self,
        channel: &Channel,
        request: Option<&[u8]>,
        limit: u64,
    ) -> Result<(u64, Option<Vec<u8>>), CallError> {
        if let Some(request) = request {
            let mut shared = channel.lock();
            shared.response = None;
            let pending = Pending {
                bytes: request.to_vec(),
                seed: [0; 32],
                wall_ns: 0,
            };
            self.offer(&mut shared, pending)?;
        }
        let debug = kvm_bindings::kvm_guest_debug {
            control: kvm_bindings::KVM_GUESTDBG_ENABLE | kvm_bindings::KVM_GUESTDBG_SINGLESTEP,
            ..Default::default()
        };
        self.vcpu
            .set_guest_debug(&debug)
            .map_err(crate::error::kvm("KVM_SET_GUEST_DEBUG"))?;
        let control = Control::new();
        let mut steps = 0u64;
        let exit = loop {
            let exit = self.run(&control, &mut |_| true);
            if exit == VmExit::Stopped && self.debug_stop && steps < limit {
                self.debug_stop = false;
                steps += 1;
                continue;
            }
            break exit;
        };
        self.vcpu
            .set_guest_debug(&kvm_bindings::kvm_guest_debug::default())
            .map_err(crate::error::kvm("KVM_SET_GUEST_DEBUG"))?;
        if self.debug_stop {
            return Err(CallError::Timeout(Duration::ZERO));
        }
        if let Some(err) = failure(channel, exit, Vec::new(), false, Duration::ZERO) {
            return Err(err);
        }
        Ok((steps, channel.lock().response.take()))
    }

    /// Runs the vCPU on a thread of its own, confined as every vCPU thread is, until it
    /// stops at the channel, ends, or `timeout` passes (then it is stopped). Returns the
    /// exit, the console output and whether the deadline stopped it.
    fn run_confined(&mut self, timeout: Duration) -> Result<(VmExit, Vec<u8>, bool), CallError> {
        control::install_kick_handler();
        let control = Control::new();
        let deadline = Instant::now() + timeout;
        let vm = self;
        let (exit, output) = std::thread::scope(|scope| {
            let (thread_tx, thread_rx) = std::sync::mpsc::channel();
            let control = &control;
            let vcpu = std::thread::Builder::new()
                .name("vcpu".into())
                .spawn_scoped(scope, move || {
                    let _ = thread_tx.send(control::current_thread());
                    let confined = sandbox::confine_vcpu_thread();
                    let mut output = Vec::new();
                    let exit = confined.map(|()| {
                        vm.run(control, &mut |bytes| {
                            let room = OUTPUT_MAX.saturating_sub(output.len());
                            output.extend_from_slice(&bytes[..bytes.len().min(room)]);
                            true
                        })
                    });
                    control.finish();
                    (exit, output)
                })
                .map_err(Error::VcpuThread)?;
            if let Ok(thread) = thread_rx.recv()
                && !control.wait_finished(deadline)
            {
                control.stop_and_kick(thread);
            }
            let (exit, output) = vcpu.join().map_err(|_| Error::VcpuPanicked)?;
            Ok::<_, Error>((exit?, output))
        })?;
        let stopped = exit == VmExit::Stopped && control.stop_requested();
        Ok((exit, output, stopped))
    }
}

/// The error of a run that did not end at the channel as it should.
fn failure(
    channel: &Channel,
    exit: VmExit,
    output: Vec<u8>,
    stopped: bool,
    timeout: Duration,
) -> Option<CallError> {
    if stopped {
        return Some(CallError::Timeout(timeout));
    }
    let output = String::from_utf8_lossy(&output);
    let output = output.trim_end();
    let with_output = |what: String| {
        if output.is_empty() {
            what
        } else {
            format!("{what}; its output:\n{output}")
        }
    };
    match exit {
        VmExit::Stopped => None,
        VmExit::Fault {
            kind: FaultKind::BadRequest,
            report,
        } if channel.lock().violation.is_some() => Some(CallError::Protocol(report)),
        VmExit::Fault { report, .. } => Some(CallError::Guest {
            report: with_output(report),
        }),
        VmExit::Status(status) => Some(CallError::Guest {
            report: with_output(format!("it exited with status {status}")),
        }),
        VmExit::Reset => Some(CallError::Guest {
            report: with_output("it reset".into()),
        }),
        VmExit::Halted { rip, .. } => Some(CallError::Guest {
            report: with_output(format!("it halted for good at {rip:#x}")),
        }),
    }
}
