//! Boot tests of what a new user can get wrong in an app, from the guest side: a status
//! `main` returns that the system reserves, a stack too small for `main`.

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
