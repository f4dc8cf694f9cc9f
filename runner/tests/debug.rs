//! Debugging a unikernel like a host program: a gdb session in batch mode, symbolized
//! backtraces of a panic and of a CPU exception, the size report, the boot timeline's
//! instruction counts and chart, per-module log levels and the serial log file.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, Stdio};
use std::time::Duration;

use runner::symbolize::Symbolizer;
use runner::{Boot, BootOutcome};

const TIMEOUT: Duration = Duration::from_secs(60);

fn example(name: &str) -> PathBuf {
    runner::example_elf(name)
}

fn boot(name: &str, args: &[&str]) -> BootOutcome {
    Boot::new(example(name))
        .timeout(TIMEOUT)
        .args(args.iter().copied())
        .run()
        .unwrap_or_else(|err| panic!("booting {name}: {err}"))
}

/// `cargo uk` itself.
fn cargo_uk() -> Command {
    Command::new(env!("CARGO_BIN_EXE_runner"))
}

/// The line of `examples/faults/src/main.rs` that holds `needle` (1-based).
fn faults_line(needle: &str) -> usize {
    let source = std::fs::read_to_string(runner::repo_root().join("examples/faults/src/main.rs"))
        .expect("the faults example's source");
    source
        .lines()
        .position(|line| line.contains(needle))
        .unwrap_or_else(|| panic!("`{needle}` is in faults/src/main.rs"))
        + 1
}

#[test]
fn a_panic_three_calls_deep_names_the_apps_functions_and_lines() {
    let outcome = boot("faults", &["deep-panic"]);
    outcome
        .assert_status(101)
        .assert_serial_contains("backtrace: 0x");
    let report = Symbolizer::open(&example("faults"))
        .unwrap()
        .render(&outcome.serial)
        .expect("the output has a backtrace");
    // Innermost first: each function at the line of its call, then main.
    let expected = [
        format!(
            "faults::check_length (examples/faults/src/main.rs:{})",
            faults_line("panic!(\"the configuration is")
        ),
        format!(
            "faults::validate (examples/faults/src/main.rs:{})",
            faults_line("check_length(text) * 2")
        ),
        format!(
            "faults::parse_config (examples/faults/src/main.rs:{})",
            faults_line("validate(text) + 1")
        ),
        format!(
            "__unikernel_user_main (examples/faults/src/main.rs:{})",
            faults_line("\"deep-panic\" =>")
        ),
    ];
    let mut rest = report.as_str();
    for line in &expected {
        let at = rest
            .find(line.as_str())
            .unwrap_or_else(|| panic!("`{line}` in order in\n{report}"));
        rest = &rest[at + line.len()..];
    }
}

#[test]
fn a_cpu_exception_names_the_faulting_line_and_its_callers() {
    let outcome = boot("faults", &["null"]);
    outcome.assert_status(102);
    let report = Symbolizer::open(&example("faults"))
        .unwrap()
        .render(&outcome.serial)
        .expect("the output has an exception report");
    let first = report.lines().nth(1).expect("a frame");
    assert!(first.contains("core::ptr::read_volatile"), "{report}");
    let user_main = format!(
        "__unikernel_user_main (examples/faults/src/main.rs:{})",
        faults_line("read_volatile(null)")
    );
    assert!(report.contains(&user_main), "{user_main} in\n{report}");
    assert!(
        report.contains("unikernel_arch::start::rust_start"),
        "{report}"
    );
}

#[test]
fn the_runner_prints_the_named_backtrace() {
    let output = cargo_uk()
        .args(["boot", "--accel", "tcg", "--timeout", "60", "-q"])
        .arg(example("faults"))
        .arg("deep-panic")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(101), "{stderr}");
    assert!(
        stderr.contains("backtrace (from the ELF's debug info):"),
        "{stderr}"
    );
    assert!(
        stderr.contains("faults::validate (examples/faults/src/main.rs:"),
        "{stderr}"
    );
}

/// A free TCP port of 127.0.0.1.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn gdb_installed() -> bool {
    let installed = Command::new("gdb").arg("--version").output().is_ok();
    if !installed {
        eprintln!("skipped: gdb is not installed (apt-get install -y gdb)");
    }
    installed
}

#[test]
fn gdb_under_qemu_breaks_reads_a_variable_and_continues_to_the_exit() {
    if gdb_installed() {
        gdb_session(&["--accel", "tcg"]);
    }
}

#[test]
fn gdb_on_the_monitor_breaks_reads_a_variable_and_continues_to_the_exit() {
    if let Err(reason) = runner::qemu::probe_dev_kvm() {
        eprintln!("skipped: /dev/kvm is not usable here ({reason})");
        return;
    }
    if gdb_installed() {
        gdb_session(&["--vmm", "monitor"]);
    }
}

/// Boots `elf` with its argument `case` under `--gdb` on a free port, and waits until the
/// runner prints the command to attach (it does once the stub is about to listen). Returns
/// the runner, the port, what it printed up to then and the rest of its stderr.
fn boot_under_gdb(
    vmm_options: &[&str],
    elf: &Path,
    case: &str,
) -> (Child, u16, String, BufReader<ChildStderr>) {
    let port = free_port();
    let mut guest = cargo_uk()
        .arg("boot")
        .args(vmm_options)
        .arg("--gdb")
        .arg(port.to_string())
        .arg(elf)
        .arg(case)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(guest.stderr.take().unwrap());
    let mut announced = String::new();
    while !announced.contains("target remote") {
        if stderr.read_line(&mut announced).unwrap() == 0 {
            panic!("the runner ended without announcing gdb: {announced}");
        }
    }
    (guest, port, announced, stderr)
}

/// Boots faults' deep panic with `vmm_options` under `--gdb` and drives it with gdb in batch
/// mode: a breakpoint on a source line and one on a function, `bt`, two steps, a
/// variable's value, and on to the guest's exit.
fn gdb_session(vmm_options: &[&str]) {
    let elf = example("faults");
    let (mut guest, port, announced, mut stderr) = boot_under_gdb(vmm_options, &elf, "deep-panic");
    let command = format!(
        "gdb -q {} -ex 'target remote 127.0.0.1:{port}'",
        elf.display()
    );
    assert!(announced.contains(&command), "{announced}");

    let source_line = faults_line("check_length(text) * 2");
    let gdb = Command::new("timeout")
        .arg("120")
        .args(["gdb", "-q", "-batch", "-nx"])
        .args(["-ex", "set pagination off"])
        .args(["-ex", &format!("target remote 127.0.0.1:{port}")])
        .args(["-ex", "break faults::check_length"])
        .args(["-ex", &format!("break main.rs:{source_line}")])
        .args(["-ex", "continue"])
        .args(["-ex", "bt"])
        .args(["-ex", "continue"])
        .args(["-ex", "next"])
        .args(["-ex", "next"])
        .args(["-ex", "print length"])
        .args(["-ex", "continue"])
        .arg(&elf)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let transcript =
        String::from_utf8_lossy(&gdb.stdout).into_owned() + &String::from_utf8_lossy(&gdb.stderr);
    let status = guest.wait().unwrap();
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(&mut stderr, &mut rest);

    // The source-line breakpoint in validate is hit first, and `bt` shows the app's frames.
    let hit =
        format!("Breakpoint 2, faults::validate (text=...) at faults/src/main.rs:{source_line}");
    assert!(transcript.contains(&hit), "{hit} in\n{transcript}");
    for frame in [
        "in faults::parse_config",
        "__unikernel_user_main (args=...) at faults/src/main.rs",
    ] {
        assert!(transcript.contains(frame), "{frame} in\n{transcript}");
    }
    // Then the function's breakpoint; two lines on, its local variable has its value.
    assert!(
        transcript.contains("Breakpoint 1, faults::check_length"),
        "{transcript}"
    );
    assert!(transcript.contains("$1 = 1\n"), "{transcript}");
    // And the guest runs on to its end: the panic's status.
    assert_eq!(status.code(), Some(101), "{transcript}\n{rest}");
}

#[test]
fn gdb_interrupts_a_running_guest_under_qemu() {
    interrupt_session(&["--accel", "tcg"]);
}

#[test]
fn gdb_interrupts_a_running_guest_on_the_monitor() {
    if let Err(reason) = runner::qemu::probe_dev_kvm() {
        eprintln!("skipped: /dev/kvm is not usable here ({reason})");
        return;
    }
    interrupt_session(&["--vmm", "monitor"]);
}

/// Boots faults' endless loop under `--gdb` and plays gdb's side of the remote protocol
/// (gdb in batch mode cannot press Ctrl-C): continue, then the interrupt byte; the stop
/// reply is SIGINT and the registers read then put the guest inside the loop.
fn interrupt_session(vmm_options: &[&str]) {
    let elf = example("faults");
    let (mut guest, port, _, _stderr) = boot_under_gdb(vmm_options, &elf, "spin");
    let mut remote = RemoteGdb::connect(port);
    remote.send(b"?");
    let first = remote.reply();
    assert!(first.starts_with('S') || first.starts_with('T'), "{first}");

    remote.send(b"c");
    // Long enough for the guest to boot and reach the loop, under TCG or emulated KVM.
    std::thread::sleep(Duration::from_secs(3));
    remote.write_raw(&[0x03]);
    let stop = remote.reply();
    // SIGINT is signal 2: `S02` or `T02...`.
    assert!(stop.starts_with("S02") || stop.starts_with("T02"), "{stop}");

    // x86_64's `g` reply: 16 general registers, then rip, 8 bytes each, little-endian hex.
    remote.send(b"g");
    let registers = remote.reply();
    let rip_hex = registers
        .get(16 * 16..17 * 16)
        .unwrap_or_else(|| panic!("no rip in the `g` reply {registers:?}"));
    let rip = u64::from_le_bytes(std::array::from_fn(|i| {
        u8::from_str_radix(&rip_hex[2 * i..2 * i + 2], 16).unwrap()
    }));
    let symbolizer = Symbolizer::open(&elf).unwrap();
    let names: Vec<String> = symbolizer
        .frames(rip)
        .into_iter()
        .filter_map(|frame| frame.function)
        .collect();
    assert!(
        names.iter().any(|name| name == "faults::spin"),
        "rip {rip:#x} is in {names:?}, not in faults::spin"
    );

    remote.send(b"k");
    let status = wait_with_timeout(&mut guest, Duration::from_secs(60));
    assert!(
        status.is_some_and(|status| !status.success()),
        "the killed guest's runner ended with {status:?}"
    );
}

/// gdb's side of the remote protocol over TCP, acknowledgements included.
struct RemoteGdb {
    stream: std::net::TcpStream,
    reader: BufReader<std::net::TcpStream>,
}

impl RemoteGdb {
    fn connect(port: u16) -> Self {
        let stream = (0..100)
            .find_map(|_| {
                std::net::TcpStream::connect(("127.0.0.1", port))
                    .map_err(|_| std::thread::sleep(Duration::from_millis(100)))
                    .ok()
            })
            .expect("the gdb stub listens");
        stream.set_read_timeout(Some(TIMEOUT)).unwrap();
        let reader = BufReader::new(stream.try_clone().unwrap());
        RemoteGdb { stream, reader }
    }

    fn write_raw(&mut self, bytes: &[u8]) {
        std::io::Write::write_all(&mut self.stream, bytes).unwrap();
    }

    /// Sends one packet, `$data#checksum`.
    fn send(&mut self, data: &[u8]) {
        let checksum = data.iter().fold(0u8, |sum, &byte| sum.wrapping_add(byte));
        let mut packet = vec![b'$'];
        packet.extend_from_slice(data);
        packet.extend_from_slice(format!("#{checksum:02x}").as_bytes());
        self.write_raw(&packet);
    }

    /// The next packet's data, expanded (acknowledgements before it skipped), acknowledged.
    fn reply(&mut self) -> String {
        let mut packet = Vec::new();
        self.reader.read_until(b'$', &mut packet).unwrap();
        packet.clear();
        self.reader.read_until(b'#', &mut packet).unwrap();
        assert_eq!(packet.pop(), Some(b'#'), "the stub closed the connection");
        let mut checksum = [0; 2];
        std::io::Read::read_exact(&mut self.reader, &mut checksum).unwrap();
        self.write_raw(b"+");
        // Run-length encoding: `x*n` is `x` and then n - 29 more of it.
        let mut data = Vec::new();
        let mut bytes = packet.into_iter();
        while let Some(byte) = bytes.next() {
            match (byte, data.last().copied()) {
                (b'*', Some(repeated)) => {
                    let count = bytes.next().expect("a run length") - 29;
                    data.extend(std::iter::repeat_n(repeated, count.into()));
                }
                _ => data.push(byte),
            }
        }
        String::from_utf8(data).unwrap()
    }
}

fn wait_with_timeout(
    child: &mut std::process::Child,
    timeout: Duration,
) -> Option<std::process::ExitStatus> {
    let deadline = std::time::Instant::now() + timeout;
    while std::time::Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    None
}

#[test]
fn the_size_report_adds_up_to_the_sections() {
    let elf = example("hello");
    let report = runner::size::analyze(&elf).unwrap();
    assert_eq!(report.crate_totals(), report.section_totals());
    assert_eq!(report.subsystems, ["console", "heap"]);
    let groups = report.groups("hello");
    let group = |name: &str| {
        groups
            .iter()
            .find(|(group, ..)| group == name)
            .unwrap_or_else(|| panic!("{name} in {groups:?}"))
    };
    assert!(group("console").2.text > 0, "{groups:?}");
    assert!(
        group("heap")
            .1
            .contains(&"linked_list_allocator".to_string())
    );
    assert!(group("the app (hello)").2.text > 0);
    let sum = groups.iter().map(|(_, _, s)| s.in_file()).sum::<u64>();
    assert_eq!(sum, report.section_totals().in_file());
    // The section sizes are the ELF's own.
    let bytes = std::fs::read(&elf).unwrap();
    let text = section_size(&bytes, ".text");
    assert_eq!(report.section_totals().text, text);

    let output = cargo_uk()
        .args(["size", "-q", "--top", "5"])
        .arg(&elf)
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{printed}");
    for needle in [
        "by subsystem",
        "by crate",
        "largest functions",
        "console",
        "heap",
    ] {
        assert!(printed.contains(needle), "{needle} in\n{printed}");
    }
}

fn section_size(elf: &[u8], name: &str) -> u64 {
    use object::{Object, ObjectSection};
    object::File::parse(elf)
        .unwrap()
        .section_by_name(name)
        .map_or(0, |section| section.size())
}

#[test]
fn the_timeline_counts_instructions_and_draws_one_bar_per_stage() {
    let dir = scratch_dir("timeline");
    let chart = dir.join("boot.svg");
    let log = dir.join("serial.log");
    let output = cargo_uk()
        .args(["boot", "--accel", "tcg", "--timeout", "60"])
        .arg("--timeline-svg")
        .arg(&chart)
        .arg("--serial-log")
        .arg(&log)
        .arg(example("hello"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("guest instructions, TCG -icount shift=0"),
        "{stderr}"
    );
    let stages: Vec<&str> = stderr
        .lines()
        .skip_while(|line| !line.contains("since first"))
        .skip(1)
        .take_while(|line| line.starts_with("  "))
        .collect();
    assert_eq!(
        stages
            .iter()
            .map(|l| l.split_whitespace().next().unwrap())
            .collect::<Vec<_>>(),
        ["entry", "arch", "console", "heap", "main"],
        "{stderr}"
    );

    let svg = std::fs::read_to_string(&chart).unwrap();
    let document = roxmltree::Document::parse(&svg).expect("well-formed XML");
    let bars = document
        .descendants()
        .filter(|node| node.has_tag_name("rect") && node.attribute("class") == Some("stage"))
        .count();
    assert_eq!(
        bars,
        stages.len() - 1,
        "one bar per stage after the entry\n{svg}"
    );

    // The serial log holds what the terminal showed.
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.contains("hello from a unikernel\n"), "{logged}");
    assert_eq!(
        logged,
        String::from_utf8_lossy(&output.stdout).replace("\r\n", "\n")
    );
}

#[test]
fn log_levels_per_module_with_the_uptime() {
    let outcome = Boot::new(example("faults"))
        .timeout(TIMEOUT)
        .kernel_flag("unikernel.log=faults::parser=trace,warn,loud")
        .arg("log")
        .run()
        .unwrap();
    outcome.assert_status(0);
    let lines: Vec<&str> = outcome
        .serial
        .lines()
        .filter(|line| line.starts_with('['))
        .collect();
    // The app's default module at warn: its error only; its parser at trace: both.
    let kept: Vec<&str> = lines
        .iter()
        .map(|line| line.split_once("] ").unwrap().1)
        .collect();
    assert_eq!(
        kept,
        [
            "an error",
            "a detail of the parser",
            "a trace of the parser"
        ],
        "{}",
        outcome.serial
    );
    for line in &lines {
        // `[    0.012345 LEVEL target]`, or question marks before any clock is known.
        let uptime = &line[1..13];
        assert!(
            uptime == "    ?.??????"
                || (uptime.trim().len() >= 8
                    && uptime.trim().split_once('.').is_some_and(|(s, us)| {
                        s.parse::<u64>().is_ok() && us.len() == 6 && us.parse::<u64>().is_ok()
                    })),
            "{line}"
        );
    }
    outcome.assert_serial_contains("unikernel.log: `loud` is not `<level>` or `<module>=<level>`");
}

/// With a known TSC frequency (a clock, or the monitor's CPUID leaf) each line carries the
/// uptime in seconds and microseconds, rising.
#[test]
fn log_lines_carry_the_uptime_once_the_tsc_frequency_is_known() {
    let outcome = Boot::new(example("rt-overrun"))
        .timeout(TIMEOUT)
        .run()
        .unwrap();
    outcome.assert_status(0);
    let uptimes: Vec<f64> = outcome
        .serial
        .lines()
        .filter(|line| line.starts_with('['))
        .map(|line| {
            line[1..13]
                .trim()
                .parse::<f64>()
                .unwrap_or_else(|_| panic!("an uptime in {line}"))
        })
        .collect();
    assert!(!uptimes.is_empty(), "{}", outcome.serial);
    assert!(
        uptimes.windows(2).all(|pair| pair[0] <= pair[1]),
        "{uptimes:?}"
    );
    assert!(uptimes[0] > 0.0 && uptimes[0] < 30.0, "{uptimes:?}");
}

/// A fresh folder under the target directory for one test's files.
fn scratch_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("debug-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
