//! Functions, the guest's side: the request channel end to end on the monitor, and the
//! images `cargo uk functions build` makes.
//!
//! A small driver serves an image over `unikernel_abi::function`'s protocol, pushes
//! requests through the port and reads the responses back: `examples/function` (a function
//! written against the `function` subsystem by hand) and each image of `examples/functions`
//! (the DSL). The gateway (`cargo uk serve`) is the real server; this driver checks the
//! guest's side of the contract. The images are also checked on their symbols: each holds
//! its function and not the others, and no network stack.
//!
//! The monitor tests need a usable /dev/kvm; where there is none each says so and passes,
//! or fails under `UK_REQUIRE_KVM=1` (see `common`).

mod common;

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use runner::Boot;
use runner::monitor::Vmm;
use unikernel_abi::function::{self as abi, Mailbox, REQUEST, RESPONSE, WAITING};
use unikernel_abi::status;
use unikernel_vmm::vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};
use unikernel_vmm::{Control, Exchange, Image, Vm, VmConfig, VmExit};

const TIMEOUT: Duration = Duration::from_secs(120);

/// The host's Unix time the driver sends with every request: 2026-09-21T14:13:20Z.
const WALL_NS: u64 = 1_790_000_000_000_000_000;

fn image() -> PathBuf {
    runner::example_elf("function")
}

/// `examples/functions`, built by `cargo uk functions build`, once per process.
fn functions() -> &'static runner::functions::Manifest {
    static BUILT: OnceLock<runner::functions::Manifest> = OnceLock::new();
    BUILT.get_or_init(|| {
        let path = runner::repo_root().join("examples/functions");
        runner::functions::build(&path, true, &mut |line| eprintln!("{line}"))
            .unwrap_or_else(|err| panic!("building examples/functions: {err}"))
            .manifest
    })
}

fn function_image(name: &str) -> &'static Path {
    &functions()
        .functions
        .get(name)
        .unwrap_or_else(|| panic!("no function `{name}` in {:?}", functions().functions.keys()))
        .image
}

/// A request as the driver sends it.
struct Sent {
    method: &'static str,
    target: &'static str,
    body: &'static [u8],
}

fn get(target: &'static str) -> Sent {
    Sent {
        method: "GET",
        target,
        body: b"",
    }
}

fn post(target: &'static str, body: &'static [u8]) -> Sent {
    Sent {
        method: "POST",
        target,
        body,
    }
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
    /// When each exit came, from the VM's creation.
    times: Vec<Duration>,
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

/// Serves `requests` one after the other in one VM of `image` (as the gateway's `warm`
/// mode does) and stops the VM at the exchange after the last response.
/// Writes `request` into the buffer of the mailbox at `address` and marks it a request
/// (with a seed of `seed` bytes and [`WALL_NS`]), as the gateway does before resuming.
fn put_request(
    memory: &GuestMemoryMmap,
    address: u64,
    request: &Sent,
    seed: u8,
) -> Result<(), String> {
    let mut mailbox = read_mailbox(memory, address)?;
    let mut buffer = vec![0; mailbox.capacity as usize];
    let length = abi::encode_request(
        &mut buffer,
        request.method,
        request.target,
        [("user-agent", &b"driver"[..])],
        request.body,
    )
    .map_err(|error| error.to_string())?;
    memory
        .write_slice(&buffer[..length], GuestAddress(mailbox.buffer))
        .map_err(|_| "buffer outside memory".to_string())?;
    mailbox.state = REQUEST;
    mailbox.length = length as u64;
    mailbox.seed = [seed; 32];
    mailbox.wall_ns = WALL_NS;
    memory
        .write_slice(&mailbox.to_bytes(), GuestAddress(address))
        .map_err(|_| "mailbox outside memory".to_string())
}

fn serve(requests: Vec<Sent>) -> (VmExit, Log, String) {
    serve_image(&image(), requests, TIMEOUT)
}

fn serve_image(image: &Path, requests: Vec<Sent>, timeout: Duration) -> (VmExit, Log, String) {
    let image = Image::open(image).expect("the image opens");
    let kvm = unikernel_vmm::open_kvm().expect("KVM opens");
    let config = VmConfig {
        memory_mib: 64,
        cmdline: "--".into(),
        ..VmConfig::default()
    };
    let created = std::time::Instant::now();
    let mut vm = Vm::new(&kvm, &image, &config).expect("the VM is made");
    let log = Arc::new(Mutex::new(Log::default()));
    let mut pending: VecDeque<Sent> = requests.into();
    let seen = Arc::clone(&log);
    vm.serve_function(Box::new(move |memory, address| {
        let mut log = seen.lock().unwrap();
        log.times.push(created.elapsed());
        let mailbox = read_mailbox(memory, address)?;
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
        put_request(memory, address, &next, log.states.len() as u8)?;
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
            if !control.wait_finished(std::time::Instant::now() + timeout) {
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

/// The body of the one response of a request in a VM of its own.
fn one(name: &str, request: Sent) -> Received {
    let (exit, mut log, output) = serve_image(function_image(name), vec![request], TIMEOUT);
    assert_eq!(exit, VmExit::Stopped, "{name}: {output}");
    assert_eq!(log.responses.len(), 1, "{name}: {output}");
    log.responses.remove(0)
}

fn text(response: &Received) -> String {
    String::from_utf8_lossy(&response.body).into_owned()
}

/// Each image holds its own function (a symbol of `functions::<name>`) and no other, and
/// no network stack: the symbols of the ELF, as `image_contents.rs` checks apps.
#[test]
fn each_image_holds_its_function_and_not_the_others() {
    let manifest = functions();
    let names: Vec<&String> = manifest.functions.keys().collect();
    assert!(names.len() >= 7, "{names:?}");
    for (name, function) in &manifest.functions {
        let bytes = std::fs::read(&function.image).unwrap();
        let symbols = runner::elf::symbol_names(&bytes).expect("a symbol table");
        // Legacy mangling: `9functions5hello` is `functions::hello`.
        let holds = |other: &str| {
            let mangled = format!("9functions{}{other}", other.len());
            symbols.iter().any(|symbol| {
                symbol
                    .split(&mangled)
                    .nth(1)
                    .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit() || c == 'E'))
            })
        };
        assert!(holds(name), "the image of `{name}` lacks its function");
        for other in names.iter().filter(|other| **other != name) {
            assert!(!holds(other), "the image of `{name}` holds `{other}`");
        }
        for crate_name in ["smoltcp", "unikernel_net", "virtio_drivers"] {
            assert!(
                !symbols.iter().any(|symbol| symbol.contains(crate_name)),
                "the image of `{name}` links {crate_name}"
            );
        }
    }
    // JSON only where a function uses it.
    let links_json = |name: &str| {
        let bytes = std::fs::read(&manifest.functions[name].image).unwrap();
        runner::elf::symbol_names(&bytes)
            .unwrap()
            .iter()
            .any(|symbol| symbol.contains("serde_json"))
    };
    assert!(links_json("stats"));
    assert!(!links_json("hello"));
}

#[test]
fn the_manifest_describes_every_function() {
    let manifest = functions();
    let stats = &manifest.functions["stats"];
    assert_eq!(
        (stats.method.as_str(), stats.path.as_str()),
        ("POST", "/stats")
    );
    assert_eq!(stats.timeout_ms, 2000);
    assert_eq!(stats.mode, runner::functions::Mode::Snapshot);
    assert!(manifest.functions["define"].state);
    assert!(!manifest.functions["hello"].state);
    let echo = &manifest.functions["echo"];
    assert_eq!(echo.max_request, 2 << 20);
    assert_eq!(echo.memory_mib, 8 + 2 + 8, "heap, buffer and the rest");
    assert_eq!(manifest.functions["forever"].timeout_ms, 1000);
    let written = runner::functions::Manifest::read(
        &manifest.functions["hello"]
            .image
            .with_file_name(runner::functions::manifest::FILE_NAME),
    )
    .unwrap();
    assert_eq!(&written, manifest);
}

#[test]
fn the_functions_answer_through_the_channel() {
    if !common::kvm_usable() {
        return;
    }
    let hello = one("hello", get("/hello"));
    assert_eq!(
        (hello.status, text(&hello).as_str()),
        (200, "hello from a function\n")
    );

    let echo = one("echo", post("/echo", b"\x00\x01binary\xff"));
    assert_eq!(echo.body, b"\x00\x01binary\xff");

    let stats = one("stats", post("/stats", br#"{"numbers": [5, -2, 9, 0]}"#));
    assert_eq!(stats.status, 200);
    assert_eq!(stats.content_type.as_deref(), Some("application/json"));
    assert_eq!(
        text(&stats),
        r#"{"count":4,"sum":12,"min":-2,"max":9,"sorted":[-2,0,5,9]}"#
    );
    let bad = one("stats", post("/stats", b"{\"numbers\": [1,"));
    assert_eq!(bad.status, 400, "{}", text(&bad));

    // The state `init` made before the first request.
    let define = one("define", get("/define?word=snapshot"));
    assert_eq!(
        text(&define),
        "snapshot: a VM's memory and registers, saved to be restored\n"
    );
    assert_eq!(one("define", get("/define?word=zebra")).status, 404);

    // The wall clock is the host's at the request, and `rand` is seeded.
    let now = one("now", get("/now"));
    assert!(
        text(&now).starts_with(r#"{"time":"2026-09-21T14:13:20."#),
        "{}",
        text(&now)
    );
}

/// A global counter is 1 in every new VM (the gateway's `fresh` and `snapshot` modes) and
/// counts up in one VM that serves several requests (`warm`).
#[test]
fn a_global_counter_is_per_vm() {
    if !common::kvm_usable() {
        return;
    }
    for _ in 0..2 {
        assert_eq!(text(&one("count", post("/count", b""))), "1\n");
    }
    let (_, log, output) = serve_image(
        function_image("count"),
        vec![
            post("/count", b""),
            post("/count", b""),
            post("/count", b""),
        ],
        TIMEOUT,
    );
    // Figures, not assertions: on this project's machine KVM emulates guest kernel code.
    let exchanges: Vec<Duration> = log.times.windows(2).map(|pair| pair[1] - pair[0]).collect();
    eprintln!(
        "count, warm: boot to the first wait {:?}, then each request {exchanges:?}",
        log.times[0]
    );
    let counts: Vec<String> = log.responses.iter().map(text).collect();
    assert_eq!(counts, ["1\n", "2\n", "3\n"], "{output}");
}

/// A panic ends the VM with the panic status and the message on its console (the gateway
/// answers 502 and logs it); a function that never answers is stopped from outside.
#[test]
fn a_panic_is_reported_and_a_loop_is_stopped() {
    if !common::kvm_usable() {
        return;
    }
    let (exit, log, output) = serve_image(function_image("panics"), vec![get("/panic")], TIMEOUT);
    assert_eq!(exit, VmExit::Status(i32::from(status::PANIC)), "{output}");
    assert!(log.responses.is_empty());
    assert!(
        output.contains("this function panics on purpose"),
        "{output}"
    );

    let started = std::time::Instant::now();
    let (exit, log, output) = serve_image(
        function_image("forever"),
        vec![get("/forever")],
        Duration::from_secs(2),
    );
    assert_eq!(exit, VmExit::Stopped, "{output}");
    assert!(log.responses.is_empty(), "it answered: {output}");
    assert!(started.elapsed() >= Duration::from_secs(2));
}

/// `cargo uk new --functions` makes a crate whose images `cargo uk functions build`
/// builds, outside the repository (its target folder shared with tests/new_app.rs's apps,
/// in cargo's scratch space, so that the kernel crates are compiled once).
#[test]
fn a_new_crate_of_functions_builds_an_image_per_function() {
    let runner = env!("CARGO_BIN_EXE_runner");
    let dir = tempfile::tempdir().unwrap();
    let crate_dir = dir.path().join("my-functions");
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("new-apps");
    let new = std::process::Command::new(runner)
        .args(["new", "--functions"])
        .arg(&crate_dir)
        .output()
        .unwrap();
    assert!(new.status.success(), "{new:?}");
    assert!(
        String::from_utf8_lossy(&new.stdout).contains("cargo uk functions build"),
        "{new:?}"
    );
    let build = std::process::Command::new(runner)
        .args(["functions", "build", "-q"])
        .arg(&crate_dir)
        .env("CARGO_TARGET_DIR", &target)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(build.status.success(), "{build:?}");
    let manifest = runner::functions::Manifest::read(
        &target
            .join(runner::functions::build::OUTPUT_DIR)
            .join(runner::functions::manifest::FILE_NAME),
    )
    .unwrap();
    assert_eq!(manifest.package, "my-functions");
    let routes: Vec<(&str, &str, &str)> = manifest
        .functions
        .iter()
        .map(|(name, function)| {
            (
                name.as_str(),
                function.method.as_str(),
                function.path.as_str(),
            )
        })
        .collect();
    assert_eq!(
        routes,
        [("echo", "POST", "/echo"), ("hello", "GET", "/hello")]
    );
    for function in manifest.functions.values() {
        assert!(function.image.is_file(), "{function:?}");
    }
}

/// The gateway's `snapshot` mode stops a VM at its first wait (where it snapshots), and
/// resumes it (or a copy) later with a request written in the meantime.
#[test]
fn a_vm_stopped_at_its_first_wait_answers_when_resumed() {
    if !common::kvm_usable() {
        return;
    }
    let image = Image::open(function_image("define")).expect("the image opens");
    let kvm = unikernel_vmm::open_kvm().expect("KVM opens");
    let config = VmConfig {
        memory_mib: 64,
        cmdline: "--".into(),
        ..VmConfig::default()
    };
    let mut vm = Vm::new(&kvm, &image, &config).expect("the VM is made");
    let exits: Arc<Mutex<Vec<(u32, u64)>>> = Arc::default();
    let seen = Arc::clone(&exits);
    vm.serve_function(Box::new(move |memory, address| {
        let mailbox = read_mailbox(memory, address)?;
        seen.lock().unwrap().push((mailbox.state, address));
        Ok(Exchange::Stop)
    }))
    .expect("the channel is offered");
    let control = Control::new();
    let mut output = Vec::new();
    let mut sink = |bytes: &[u8]| {
        output.extend_from_slice(bytes);
        true
    };
    assert_eq!(vm.run(&control, &mut sink), VmExit::Stopped);
    let [(WAITING, address)] = exits.lock().unwrap()[..] else {
        panic!("one wait: {:?}", exits.lock().unwrap());
    };
    put_request(vm.memory(), address, &get("/define?word=function"), 1).unwrap();
    assert_eq!(vm.run(&control, &mut sink), VmExit::Stopped);
    let mailbox = read_mailbox(vm.memory(), address).unwrap();
    assert_eq!(mailbox.state, RESPONSE);
    let mut response = vec![0; mailbox.length as usize];
    vm.memory()
        .read_slice(&mut response, GuestAddress(mailbox.buffer))
        .unwrap();
    let response = abi::decode_response(&response).unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(response.body, b"function: code that answers one request\n");
}
