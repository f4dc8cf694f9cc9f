//! The request channel of function images, end to end on the monitor: a small driver
//! serves `examples/function` (a function written against the `function` subsystem by
//! hand) over `unikernel_abi::function`'s protocol, pushes requests through the port and
//! reads the responses back. The gateway (`cargo uk serve`) is the real server; this
//! driver checks the guest's side of the contract.
//!
//! The monitor tests need a usable /dev/kvm; where there is none each says so and passes,
//! or fails under `UK_REQUIRE_KVM=1` (see `common`).

mod common;

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use runner::Boot;
use runner::monitor::Vmm;
use unikernel_abi::function::{self as abi, Mailbox, REQUEST, RESPONSE, WAITING};
use unikernel_abi::status;
use unikernel_vmm::vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};
use unikernel_vmm::{Control, Exchange, Image, Vm, VmConfig, VmExit};

const TIMEOUT: Duration = Duration::from_secs(120);

fn image() -> PathBuf {
    runner::example_elf("function")
}

/// A request as the driver sends it.
struct Sent {
    method: &'static str,
    target: &'static str,
    body: &'static [u8],
}

/// A response as the driver read it back.
#[derive(Debug)]
struct Received {
    status: u16,
    content_type: Option<String>,
    body: Vec<u8>,
}

/// What the driver saw at each exchange.
#[derive(Default)]
struct Log {
    /// The mailbox's state at each exit, in order.
    states: Vec<u32>,
    capacity: u64,
    responses: Vec<Received>,
}

fn read_mailbox(memory: &GuestMemoryMmap, address: u64) -> Result<Mailbox, String> {
    let mut bytes = [0; abi::MAILBOX_SIZE];
    memory
        .read_slice(&mut bytes, GuestAddress(address))
        .map_err(|_| format!("mailbox at {address:#x} outside memory"))?;
    Ok(Mailbox::from_bytes(bytes))
}

/// Serves `requests` one after the other in one VM (as the gateway's `warm` mode does) and
/// stops the VM at the exchange after the last response.
fn serve(requests: Vec<Sent>) -> (VmExit, Log, String) {
    let image = Image::open(&image()).expect("the image opens");
    let kvm = unikernel_vmm::open_kvm().expect("KVM opens");
    let config = VmConfig {
        memory_mib: 64,
        cmdline: "--".into(),
        ..VmConfig::default()
    };
    let mut vm = Vm::new(&kvm, &image, &config).expect("the VM is made");
    let log = Arc::new(Mutex::new(Log::default()));
    let mut pending: VecDeque<Sent> = requests.into();
    let seen = Arc::clone(&log);
    vm.serve_function(Box::new(move |memory, address| {
        let mut log = seen.lock().unwrap();
        let mut mailbox = read_mailbox(memory, address)?;
        log.states.push(mailbox.state);
        log.capacity = mailbox.capacity;
        let mut buffer = vec![0; mailbox.capacity as usize];
        if mailbox.state == RESPONSE {
            let response = &mut buffer[..mailbox.length as usize];
            memory
                .read_slice(response, GuestAddress(mailbox.buffer))
                .map_err(|_| "response outside memory".to_string())?;
            let decoded = abi::decode_response(response).map_err(|error| error.to_string())?;
            let content_type = decoded
                .headers
                .clone()
                .find(|(name, _)| *name == "content-type")
                .map(|(_, value)| String::from_utf8_lossy(value).into_owned());
            log.responses.push(Received {
                status: decoded.status,
                content_type,
                body: decoded.body.to_vec(),
            });
        }
        let Some(next) = pending.pop_front() else {
            return Ok(Exchange::Stop);
        };
        let length = abi::encode_request(
            &mut buffer,
            next.method,
            next.target,
            [("user-agent", &b"driver"[..])],
            next.body,
        )
        .map_err(|error| error.to_string())?;
        memory
            .write_slice(&buffer[..length], GuestAddress(mailbox.buffer))
            .map_err(|_| "buffer outside memory".to_string())?;
        mailbox.state = REQUEST;
        mailbox.length = length as u64;
        mailbox.seed = [log.states.len() as u8; 32];
        mailbox.wall_ns = 1_790_000_000_000_000_000;
        memory
            .write_slice(&mailbox.to_bytes(), GuestAddress(address))
            .map_err(|_| "mailbox outside memory".to_string())?;
        Ok(Exchange::Resume)
    }))
    .expect("the channel is offered");

    // A guest that never answers is stopped (kicked out of KVM_RUN) at the timeout.
    unikernel_vmm::control::install_kick_handler();
    let control = Arc::new(Control::new());
    let watchdog = {
        let control = Arc::clone(&control);
        let vcpu_thread = unikernel_vmm::control::current_thread();
        std::thread::spawn(move || {
            if !control.wait_finished(std::time::Instant::now() + TIMEOUT) {
                control.stop_and_kick(vcpu_thread);
            }
        })
    };
    let mut output = Vec::new();
    let exit = vm.run(&control, &mut |bytes| {
        output.extend_from_slice(bytes);
        true
    });
    control.finish();
    watchdog.join().expect("the watchdog ends");
    let log = std::mem::take(&mut *log.lock().unwrap());
    (exit, log, String::from_utf8_lossy(&output).into_owned())
}

#[test]
fn requests_go_in_and_responses_come_out_through_the_port() {
    if !common::kvm_usable() {
        return;
    }
    let (exit, log, output) = serve(vec![
        Sent {
            method: "GET",
            target: "/hello?name=driver",
            body: b"",
        },
        Sent {
            method: "POST",
            target: "/echo",
            body: b"ping \x00\xff pong",
        },
        Sent {
            method: "GET",
            target: "/nowhere",
            body: b"",
        },
        Sent {
            method: "GET",
            target: "/hello",
            body: b"",
        },
    ]);
    assert_eq!(
        exit,
        VmExit::Stopped,
        "the driver stopped it; output: {output}"
    );
    // One exit before the first request (the snapshot point), then one per response.
    assert_eq!(
        log.states,
        [WAITING, RESPONSE, RESPONSE, RESPONSE, RESPONSE],
        "{output}"
    );
    assert_eq!(log.capacity, 64 * 1024, "max_request of the attribute");
    let [hello, echo, missing, again] = &log.responses[..] else {
        panic!("four responses: {:?}", log.responses);
    };
    assert_eq!(hello.status, 200);
    assert_eq!(
        hello.content_type.as_deref(),
        Some("text/plain; charset=utf-8")
    );
    let hello = String::from_utf8_lossy(&hello.body).into_owned();
    assert!(
        hello.starts_with("hello, driver (request 1, random "),
        "{hello}"
    );
    assert_eq!(echo.status, 200);
    assert_eq!(echo.body, b"ping \x00\xff pong");
    assert_eq!(missing.status, 404);
    assert_eq!(missing.body, b"no such route");
    // Warm: the same VM keeps its state between requests.
    let again = String::from_utf8_lossy(&again.body).into_owned();
    assert!(again.starts_with("hello, world (request 4, "), "{again}");
}

#[test]
fn a_response_larger_than_the_buffer_is_a_500_not_a_crash() {
    if !common::kvm_usable() {
        return;
    }
    let (exit, log, output) = serve(vec![
        Sent {
            method: "GET",
            target: "/big",
            body: b"",
        },
        Sent {
            method: "POST",
            target: "/echo",
            body: b"still here",
        },
    ]);
    assert_eq!(exit, VmExit::Stopped, "{output}");
    let [big, echo] = &log.responses[..] else {
        panic!("two responses: {:?}", log.responses);
    };
    assert_eq!(big.status, 500);
    let text = String::from_utf8_lossy(&big.body);
    assert!(text.contains("65536-byte buffer"), "{text}");
    assert_eq!(echo.body, b"still here");
}

/// Without a server the monitor offers no channel, and the image says in one sentence how
/// to run it instead of waiting for requests that never come.
#[test]
fn without_the_channel_the_image_says_how_to_run_it_and_fails() {
    if !common::kvm_usable() {
        return;
    }
    let outcome = Boot::new(image())
        .vmm(Vmm::Monitor)
        .timeout(TIMEOUT)
        .run()
        .expect("the boot starts");
    outcome
        .assert_status(i32::from(status::BOOT_ERROR))
        .assert_serial_contains("serve it with `cargo uk serve`");
}

/// QEMU has no request channel: the same sentence and status.
#[test]
fn under_qemu_the_image_says_how_to_run_it_and_fails() {
    let outcome = Boot::new(image())
        .timeout(TIMEOUT)
        .run()
        .expect("the boot starts");
    outcome
        .assert_status(i32::from(status::BOOT_ERROR))
        .assert_serial_contains("serve it with `cargo uk serve`");
}
