//! `runner new` end to end: create an app outside the repository, then `cargo run` in it
//! builds the image and boots it through the runner (cargo's `runner` setting).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs `command` with a deadline; the output (stdout, stderr) and whether it succeeded.
fn run_with_deadline(mut command: Command, deadline: Duration) -> (bool, String, String) {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cargo starts");
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut text).ok();
        text
    });
    let err = std::thread::spawn(move || {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut stderr, &mut text).ok();
        text
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait works") {
            break Some(status);
        }
        if start.elapsed() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let (out, mut err) = (out.join().unwrap(), err.join().unwrap());
    if status.is_none() {
        err.push_str(&format!("\n(stopped after {} s)\n", deadline.as_secs()));
    }
    (status.is_some_and(|s| s.success()), out, err)
}

/// A fixed place in the temporary folder, so that a second run reuses the app's build.
fn app_dir() -> PathBuf {
    std::env::temp_dir()
        .join("runner-new-app-test")
        .join("hello-app")
}

/// Creates the app afresh at `path`, keeping an earlier build's `target/`.
fn create_keeping_target(path: &Path) {
    let kept = path.with_file_name("kept-target");
    let _ = std::fs::remove_dir_all(&kept);
    if path.join("target").is_dir() {
        std::fs::rename(path.join("target"), &kept).unwrap();
    }
    let _ = std::fs::remove_dir_all(path);
    let (created, name) = runner::new::create(path, None).expect("runner new works");
    assert_eq!(created, std::path::absolute(path).unwrap());
    assert_eq!(name, "hello-app");
    if kept.is_dir() {
        std::fs::rename(&kept, path.join("target")).unwrap();
    }
}

#[test]
fn a_new_app_builds_and_boots_with_cargo_run() {
    let path = app_dir();
    create_keeping_target(&path);
    for file in ["Cargo.toml", ".cargo/config.toml", "src/main.rs"] {
        assert!(path.join(file).is_file(), "{file} is missing");
    }

    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .args(["run", "--", "an-argument"])
        .current_dir(&path)
        // The app is its own project: nothing of this test's cargo environment applies.
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS");
    let (ok, stdout, stderr) = run_with_deadline(command, Duration::from_secs(600));
    assert!(
        ok && stdout.contains("hello from hello-app"),
        "`cargo run` in the new app failed\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}"
    );
}
