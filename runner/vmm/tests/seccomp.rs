//! The vCPU thread's seccomp filter kills the monitor's process on a system call it does
//! not allow, refuses opening a file with an error, and lets the exit loop's own calls
//! (and glibc's while it frees memory) through.
//!
//! Each case runs in a child process (this test binary again, one test selected, with
//! `SECCOMP_CASE` set), because a filter cannot be removed and the kill takes the process.

use std::os::unix::process::ExitStatusExt;
use std::process::Command;

const CASE: &str = "SECCOMP_CASE";

/// Runs `test` of this binary in a child with `SECCOMP_CASE=<case>`.
fn run_case(test: &str, case: &str) -> std::process::Output {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test, "--nocapture", "--test-threads", "1"])
        .env(CASE, case)
        .output()
        .unwrap()
}

/// In the child: confine this thread as a vCPU thread, then do what `case` says.
#[test]
fn child() {
    let Ok(case) = std::env::var(CASE) else {
        return;
    };
    unikernel_vmm::sandbox::confine_vcpu_thread().expect("the filter installs");
    match case.as_str() {
        "open" => match std::fs::File::open("/etc/hostname") {
            Ok(_) => eprintln!("open was allowed"),
            Err(err) => eprintln!("open was refused: {:?}", err.kind()),
        },
        "socket" => {
            let _ = std::net::UdpSocket::bind("127.0.0.1:0");
            eprintln!("socket was allowed");
        }
        "spawn" => {
            let _ = Command::new("/bin/true").status();
            eprintln!("spawn was allowed");
        }
        "trim" => {
            // Heap blocks below the mmap threshold, all freed at once: glibc trims the
            // thread's arena, and the first trim in a process checks the overcommit mode
            // (opening /proc/sys/vm/overcommit_memory) from whichever thread does it.
            let blocks: Vec<Vec<u8>> = (0..32).map(|i| vec![i as u8; 100 * 1024]).collect();
            eprintln!("allocated {} blocks", blocks.len());
            drop(blocks);
            eprintln!("freed them");
        }
        "allowed" => {
            // What the exit loop does: allocate output buffers, write, end.
            let buffer = vec![0x55u8; 1 << 20];
            eprintln!("allocated {} bytes", buffer.len());
            drop(buffer);
        }
        other => panic!("unknown case {other}"),
    }
    std::process::exit(0);
}

#[test]
fn a_forbidden_system_call_kills_the_process() {
    for case in ["socket", "spawn"] {
        let output = run_case("child", case);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            output.status.signal(),
            Some(libc_sigsys()),
            "{case}: {:?}\n{stderr}",
            output.status
        );
        assert!(!stderr.contains("was allowed"), "{case}: {stderr}");
    }
}

/// Opening a file is refused with an error (glibc's allocator may try it; see the next
/// test), not allowed.
#[test]
fn opening_a_file_is_refused() {
    let output = run_case("child", "open");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{:?}\n{stderr}", output.status);
    assert!(
        stderr.contains("open was refused: PermissionDenied"),
        "{stderr}"
    );
}

/// Freeing memory never kills a vCPU thread, although glibc may open a file to do it the
/// first time (runner/tests/hostile.rs saw the monitor killed by SIGSYS when a guest's
/// output stopped being read and its buffers were freed).
#[test]
fn freeing_memory_does_not_kill_the_process() {
    let output = run_case("child", "trim");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{:?}\n{stderr}", output.status);
    assert!(stderr.contains("freed them"), "{stderr}");
}

#[test]
fn what_the_exit_loop_needs_is_allowed() {
    let output = run_case("child", "allowed");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{:?}\n{stderr}", output.status);
    assert!(stderr.contains("allocated 1048576 bytes"), "{stderr}");
}

/// SIGSYS: what seccomp's kill action reports.
fn libc_sigsys() -> i32 {
    31
}
