//! `cargo uk new` end to end, as a new user meets it: apps created outside the repository
//! (in temporary folders, removed afterwards), built and booted with their own `cargo run`.
//!
//! The apps share one target folder in cargo's scratch space for tests, so that the kernel
//! crates are compiled once for all of them (and kept for the next run).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use runner::repo_root;

/// The runner binary, as `cargo uk` runs it (`target/debug/runner`).
const RUNNER: &str = env!("CARGO_BIN_EXE_runner");

/// One cargo build or boot; an app's boot runs QEMU under TCG.
const DEADLINE: Duration = Duration::from_secs(900);

/// What a command did.
struct Ran {
    status: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Ran {
    fn success(&self) -> bool {
        self.status == Some(0)
    }
}

impl std::fmt::Display for Ran {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "status {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

/// Runs `command` with a deadline, killing it if it passes.
fn run_with_deadline(mut command: Command, deadline: Duration) -> Ran {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the command starts");
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
    let (stdout, mut stderr) = (out.join().unwrap(), err.join().unwrap());
    if status.is_none() {
        stderr.push_str(&format!("\n(stopped after {} s)\n", deadline.as_secs()));
    }
    Ran {
        status: status.and_then(|status| status.code()),
        stdout,
        stderr,
    }
}

fn output(ran: std::process::Output) -> Ran {
    Ran {
        status: ran.status.code(),
        stdout: String::from_utf8_lossy(&ran.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&ran.stderr).into_owned(),
    }
}

/// An app made by `cargo uk new` in a temporary folder of its own.
struct App {
    /// Removed when the app is dropped.
    _folder: tempfile::TempDir,
    path: PathBuf,
    /// What `cargo uk new` printed.
    created: Ran,
}

impl App {
    /// `cargo uk new <tmp>/<name>`, run as its user runs it: in the repository, through
    /// the `uk` alias (`cargo run -q -p runner --`).
    fn new(name: &str) -> App {
        let folder = tempfile::Builder::new()
            .prefix("uk-new-app-")
            .tempdir()
            .expect("a temporary folder");
        let path = folder.path().join(name);
        let mut command = cargo();
        command
            .args(["uk", "new"])
            .arg(&path)
            .current_dir(repo_root());
        let created = run_with_deadline(command, DEADLINE);
        assert!(created.success(), "`cargo uk new` failed: {created}");
        App {
            _folder: folder,
            path,
            created,
        }
    }

    fn write(&self, file: &str, contents: &str) {
        std::fs::write(self.path.join(file), contents).unwrap();
    }

    fn read(&self, file: &str) -> String {
        std::fs::read_to_string(self.path.join(file)).unwrap()
    }

    /// `cargo <args>` in the app, as its user runs it, with the target folder the test
    /// apps share; `env` is added to the environment.
    fn cargo(&self, args: &[&str], env: &[(&str, &str)]) -> Ran {
        let mut command = cargo();
        let (subcommand, rest) = args.split_first().expect("a cargo command");
        command
            .arg(subcommand)
            .arg("--target-dir")
            .arg(shared_target())
            .args(rest)
            .current_dir(&self.path)
            .envs(env.iter().copied());
        run_with_deadline(command, DEADLINE)
    }
}

/// Cargo, in a user's environment rather than this test's.
fn cargo() -> Command {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    for variable in [
        "CARGO_TARGET_DIR",
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_MANIFEST_DIR",
        "CARGO_MANIFEST_PATH",
        "UNIKERNEL_RUNNER_FLAGS",
    ] {
        command.env_remove(variable);
    }
    command
}

/// The runner's builds in the repository's target folder (every profile and target)
/// written since `since`.
fn runner_builds_since(since: SystemTime) -> Vec<PathBuf> {
    let target = repo_root().join("target");
    let mut deps = vec![target.join("debug/deps")];
    for entry in std::fs::read_dir(&target).into_iter().flatten().flatten() {
        deps.push(entry.path().join("debug/deps"));
    }
    deps.iter()
        .flat_map(|dir| std::fs::read_dir(dir).into_iter().flatten().flatten())
        .map(|entry| entry.path())
        .filter(|path| {
            path.extension().is_none()
                && path
                    .file_name()
                    .and_then(|name| name.to_str())
                    .is_some_and(|name| name.starts_with("runner-"))
        })
        .filter(|path| modified(path) >= since)
        .collect()
}

/// The target folder the test apps share, in cargo's scratch space for integration tests.
fn shared_target() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("new-apps")
}

/// A TCP port on 127.0.0.1 that nothing listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free port")
}

/// The `name = "..."` / `version = "..."` pairs of a Cargo.lock.
fn locked_versions(lock: &str) -> Vec<(String, String)> {
    let mut versions = Vec::new();
    let mut name = None;
    for line in lock.lines() {
        if let Some(value) = line.strip_prefix("name = ") {
            name = Some(value.trim_matches('"').to_string());
        } else if let (Some(value), Some(name)) = (line.strip_prefix("version = "), name.take()) {
            versions.push((name, value.trim_matches('"').to_string()));
        }
    }
    versions
}

fn modified(path: &Path) -> SystemTime {
    std::fs::metadata(path)
        .and_then(|meta| meta.modified())
        .unwrap()
}

#[test]
fn a_new_app_builds_and_boots_with_cargo_run() {
    let app = App::new("hello-app");
    // `cargo uk new` says what it does.
    let said = &app.created.stderr;
    assert!(
        said.contains("creating `hello-app` in") && said.contains("wrote src/main.rs"),
        "{}",
        app.created
    );
    assert!(said.contains("wrote Cargo.lock"), "{}", app.created);
    for file in [
        "Cargo.toml",
        ".cargo/config.toml",
        ".cargo/boot",
        "src/main.rs",
    ] {
        assert!(app.path.join(file).is_file(), "{file} is missing");
    }

    // The app's dependencies are locked at the versions the repository tests.
    let repository: Vec<_> =
        locked_versions(&std::fs::read_to_string(repo_root().join("examples/Cargo.lock")).unwrap());
    let locked = locked_versions(&app.read("Cargo.lock"));
    assert!(
        locked.iter().any(|(name, _)| name == "smoltcp"),
        "{locked:?}"
    );
    for (name, version) in &locked {
        if name != "hello-app" {
            assert!(
                repository.contains(&(name.clone(), version.clone())),
                "{name} {version} is not the repository's version"
            );
        }
    }

    // The first `cargo run` boots with the runner `cargo uk new` ran on: it builds no other.
    let start = SystemTime::now();
    let ran = app.cargo(&["run", "--", "an-argument"], &[]);
    assert!(
        ran.success() && ran.stdout.contains("hello from hello-app"),
        "`cargo run` in the new app failed: {ran}"
    );
    assert_eq!(
        runner_builds_since(start),
        Vec::<PathBuf>::new(),
        "the app's `cargo run` built the runner again"
    );
}

/// Every subsystem at once: the largest image an app can declare.
const EVERY_SUBSYSTEM: &str = r#"#![no_std]
#![no_main]

use unikernel::net::TcpListener;
use unikernel::prelude::*;

fn tick() {}

#[unikernel(
    console,
    heap = "16 MiB",
    args,
    sched = edf,
    task(tick, period = "10 ms", wcet = "1 ms"),
    net(ipv4 = "10.0.2.15/24", gateway = "10.0.2.2")
)]
fn main(args: Args, net: Net, clock: Clock, sched: Sched) -> ExitCode {
    let listener = TcpListener::bind(&net, 80).unwrap();
    sched.run_for(Duration::from_millis(20));
    if args.first().map(|arg| arg.as_str()) == Some("wait") {
        println!("waiting");
        loop {
            sched.run_for(Duration::from_millis(100));
        }
    }
    drop(listener);
    println!("every subsystem is up after {:?}", clock.since_boot());
    ExitCode::SUCCESS
}
"#;

#[test]
fn every_subsystem_links_and_boots_in_dev_and_release() {
    let app = App::new("every-subsystem");
    app.write("src/main.rs", EVERY_SUBSYSTEM);
    // The runner gives an image that links `net` a user-mode network; a port of its own.
    let manifest = app.read("Cargo.toml").replace(
        "[package.metadata.unikernel]\n",
        &format!(
            "[package.metadata.unikernel]\nforward = [\"{}:80\"]\ntimeout = 120\n",
            free_port()
        ),
    );
    app.write("Cargo.toml", &manifest);
    for profile in [&["run"][..], &["run", "--release"][..]] {
        let ran = app.cargo(profile, &[]);
        assert!(
            ran.success() && ran.stdout.contains("every subsystem is up"),
            "`cargo {}` failed: {ran}",
            profile.join(" ")
        );
    }
}

#[test]
fn runner_options_come_from_cargo_toml_and_unikernel_runner_flags() {
    let app = App::new("options-app");
    app.write("src/main.rs", EVERY_SUBSYSTEM);
    let manifest = app.read("Cargo.toml");
    let with = |settings: &str| {
        manifest.replace(
            "[package.metadata.unikernel]\n",
            &format!("[package.metadata.unikernel]\n{settings}\n"),
        )
    };
    let forward = format!("forward = [\"{}:80\"]", free_port());
    app.write("Cargo.toml", &with(&format!("timeout = 3\n{forward}")));
    let ran = app.cargo(&["run", "--", "wait"], &[]);
    assert_eq!(ran.status, Some(124), "{ran}");
    assert!(ran.stdout.contains("waiting"), "{ran}");
    assert!(
        ran.stderr.contains("did not exit within 3 s"),
        "the timeout of Cargo.toml was not used: {ran}"
    );
    // The message says how to change it from `cargo run`.
    let toml = app.path.join("Cargo.toml");
    assert!(
        ran.stderr.contains(&format!(
            "set `timeout = 60` under [package.metadata.unikernel] in {}",
            toml.display()
        )) && ran
            .stderr
            .contains("UNIKERNEL_RUNNER_FLAGS=\"--timeout 60\" cargo run"),
        "{ran}"
    );

    // For one run, the environment wins over Cargo.toml.
    let ran = app.cargo(
        &["run", "--", "wait"],
        &[("UNIKERNEL_RUNNER_FLAGS", "--timeout 2")],
    );
    assert_eq!(ran.status, Some(124), "{ran}");
    assert!(ran.stderr.contains("did not exit within 2 s"), "{ran}");

    // A key that is no option, or a bad value, is one sentence naming the table.
    app.write("Cargo.toml", &with("timout = 3"));
    let ran = app.cargo(&["run"], &[]);
    assert_eq!(ran.status, Some(2), "{ran}");
    assert!(
        ran.stderr.contains(&format!(
            "cargo uk: [package.metadata.unikernel] in {}: `timout` is not an option of the runner; expected one of: ",
            toml.display()
        )),
        "{ran}"
    );
    app.write("Cargo.toml", &with("memory = \"lots\""));
    let ran = app.cargo(&["run"], &[]);
    assert_eq!(ran.status, Some(2), "{ran}");
    assert!(
        ran.stderr.contains("[package.metadata.unikernel] in ")
            && ran.stderr.contains("invalid value 'lots' for '--memory"),
        "{ran}"
    );
}

#[test]
fn an_image_too_large_to_link_says_what_to_do() {
    let app = App::new("too-large");
    app.write(
        "src/main.rs",
        r#"#![no_std]
#![no_main]

use unikernel::prelude::*;

/// More than the image may hold.
static TABLE: [u8; 2 << 20] = [7; 2 << 20];

#[unikernel(console)]
fn main() -> ExitCode {
    println!("{}", core::hint::black_box(&TABLE)[12345]);
    ExitCode::SUCCESS
}
"#,
    );
    let ran = app.cargo(&["build"], &[]);
    assert!(!ran.success(), "{ran}");
    assert!(
        ran.stderr.contains(
            "the image (code, data and bss) does not fit below 2 MiB: build it with --release \
             or `opt-level = 1` under [profile.dev], or move large buffers from statics to the heap"
        ),
        "{ran}"
    );
    // Nothing else: the multiboot layout check holds its tongue when the size is the cause.
    assert_eq!(ran.stderr.matches("unikernel.ld:").count(), 1, "{ran}");
}

#[test]
fn a_build_without_the_linker_flags_is_one_clear_error() {
    let app = App::new("no-flags");
    let config = app.read(".cargo/config.toml");
    let without: String = config
        .lines()
        .filter(|line| !line.starts_with("rustflags"))
        .map(|line| format!("{line}\n"))
        .collect();
    assert_ne!(config, without);
    app.write(".cargo/config.toml", &without);
    let ran = app.cargo(&["build"], &[]);
    assert!(!ran.success(), "{ran}");
    assert!(
        ran.stderr.contains(
            "an image must be linked with unikernel's linker script: add `rustflags = [\"-C\", \
             \"link-arg=-Tunikernel.ld\", \"-C\", \"relocation-model=static\"]` under \
             `[target.x86_64-unknown-none]` in the app's .cargo/config.toml (`cargo uk new` writes it)"
        ),
        "{ran}"
    );
    assert!(!ran.stderr.contains("panicked"), "{ran}");
}

#[test]
fn new_refuses_the_repository_and_reserved_names_in_one_sentence() {
    let refused = |args: &[&Path]| {
        let ran = output(
            Command::new(RUNNER)
                .arg("new")
                .args(args)
                .stdin(Stdio::null())
                .output()
                .expect("the runner starts"),
        );
        assert_eq!(ran.status, Some(1), "{ran}");
        assert_eq!(ran.stderr.lines().count(), 1, "{ran}");
        ran.stderr
    };
    let inside = repo_root().join("my-app");
    assert!(refused(&[&inside]).contains("is inside the repository"));
    assert!(!inside.exists());
    let folder = tempfile::tempdir().unwrap();
    for name in ["crate", "fn", "core", "std", "alloc", "test"] {
        let message = refused(&[&folder.path().join(name)]);
        assert!(message.contains(&format!("`{name}`")), "{message}");
    }
    let message = refused(&[&folder.path().join("app"), Path::new("--name=my.app")]);
    assert!(message.contains("contains `.`"), "{message}");
    assert_eq!(std::fs::read_dir(folder.path()).unwrap().count(), 0);
}
