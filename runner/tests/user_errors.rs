//! Boot tests of what a new user can get wrong in an app, from the guest side: a status
//! `main` returns that the system reserves, a heap larger than the VM, a stack too small
//! for `main`.

use std::path::PathBuf;
use std::time::Duration;

use runner::{Boot, BootOutcome};

const TIMEOUT: Duration = Duration::from_secs(60);

fn boot(name: &str, args: &[&str]) -> BootOutcome {
    let elf: PathBuf = runner::example_elf(name);
    Boot::new(elf)
        .timeout(TIMEOUT)
        .args(args.iter().copied())
        .run()
        .unwrap_or_else(|err| panic!("booting {name}: {err}"))
}

/// Statuses above 100, the system's among them, are reported as what they are: never as
/// a panic (101), a timeout (124) or a silent 127.
#[test]
fn a_status_outside_the_apps_range_is_reported_as_out_of_range() {
    for code in ["101", "124", "200"] {
        let outcome = boot("faults", &["exit", code]);
        outcome.assert_status(104).assert_serial_contains(&format!(
            "main returned status {code}, outside 0-100: reported as status 104\n"
        ));
        let summary = outcome.summary().expect("a non-zero status has a summary");
        assert_eq!(
            summary,
            "the guest exited with status 104 (main returned a status outside 0-100)"
        );
    }
}

#[test]
fn a_status_in_the_apps_range_is_passed_unchanged() {
    boot("faults", &["exit", "100"]).assert_status(100);
}

/// The message says what does not fit and how to give the VM more memory: the runner's
/// `--memory`.
#[test]
fn a_heap_that_does_not_fit_names_the_runners_memory_option() {
    Boot::new(runner::example_elf("hello"))
        .timeout(TIMEOUT)
        .memory(2)
        .run()
        .expect("the boot starts")
        .assert_status(103)
        .assert_serial_contains(
            "boot error: heap: 1 MiB does not fit: the largest free range of the VM's memory is ",
        )
        .assert_serial_contains("; give the VM more memory (the runner's `--memory <MiB>`)\n");
}

fn stack_depth_guest() -> PathBuf {
    runner::build::CargoBuild {
        manifest_path: std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/guests/stack-depth/Cargo.toml"),
        package: None,
        release: true,
        quiet: true,
    }
    .run()
    .expect("the stack-depth guest builds")
}

/// `stack = "1 MiB"` gives `main` a stack of that size: about 600 KiB of frames fit (they
/// would overflow the default 256 KiB), about 4 MiB overflow, and the report says the
/// stack's size.
#[test]
fn main_runs_on_the_stack_the_app_chose_and_its_overflow_names_the_size() {
    let guest = stack_depth_guest();
    let boot = |depth: &str| {
        Boot::new(&guest)
            .timeout(TIMEOUT)
            .args([depth])
            .run()
            .expect("the boot starts")
    };
    boot("300")
        .assert_status(0)
        .assert_serial_contains("recursed 300 frames")
        .assert_serial_contains("the thread's sum: 36\n");
    boot("2048")
        .assert_status(102)
        .assert_serial_contains("exception: stack overflow: the main stack ran into its guard page")
        .assert_serial_contains(
            "  the main stack is 1 MiB; choose its size with `stack = \"...\"` in `#[unikernel(...)]`\n",
        );
}

/// Without `stack`, the report names the boot entry's 256 KiB.
#[test]
fn the_default_stacks_overflow_names_its_size() {
    boot("faults", &["overflow"])
        .assert_status(102)
        .assert_serial_contains("exception: stack overflow: the main stack ran into its guard page")
        .assert_serial_contains(
            "  the main stack is 256 KiB; choose its size with `stack = \"...\"` in `#[unikernel(...)]`\n",
        );
}

/// Boots udp-echo on the user-mode network until it listens; its console so far.
fn udp_echo_console(boot: Boot) -> String {
    use runner::net::{Guest, Network};
    let elf = runner::example_elf("udp-echo");
    let mut guest = Guest::spawn(
        &boot.memory(64),
        &elf,
        runner::AccelRequest::Auto,
        runner::Machine::Microvm,
        &Network::User(Vec::new()),
    )
    .expect("udp-echo starts");
    let ready = guest.wait_for("udp-echo: listening", TIMEOUT);
    let console = guest.stop();
    ready.unwrap_or_else(|err| panic!("{err}\n{console}"));
    console
}

/// A net app's console shows the app, not the virtio driver's feature negotiation; the
/// kernel flag `unikernel.log=info` brings the driver's records back.
#[test]
fn a_net_apps_console_has_no_virtio_driver_info_unless_asked() {
    let elf = runner::example_elf("udp-echo");
    let quiet = udp_echo_console(Boot::new(&elf));
    assert!(!quiet.contains("virtio_drivers"), "{quiet}");
    let asked = udp_echo_console(Boot::new(&elf).kernel_flag("unikernel.log=info"));
    assert!(
        asked.contains("virtio_drivers") && asked.contains("negotiated_features"),
        "{asked}"
    );
}
