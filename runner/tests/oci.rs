//! The OCI path end to end, as root: `cargo uk pkg` images run by podman and containerd
//! (`ctr run --runc-binary`) through `uk-runtime`, the runtime's lifecycle as runc prints
//! it, a faulting guest, a non-unikernel bundle handed to runc, and nothing left behind.
//! podman, containerd and runc are installed with apt-get when missing (as the setup
//! installs QEMU); podman and containerd keep their storage in temporary folders.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use runner::pkg::{PkgOptions, package};

#[path = "common/wait.rs"]
mod wait;

/// One test at a time: they share the CPU, apt-get and the host's ports.
static SERIAL: Mutex<()> = Mutex::new(());

/// podman here needs these (its defaults exceed the container's limits on this host).
const ULIMITS: [&str; 4] = [
    "--ulimit",
    "nofile=1024:1024",
    "--ulimit",
    "nproc=1024:1024",
];

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Whether the test may run: as root (it makes namespaces, taps and containers) with KVM
/// or QEMU; otherwise it says why it is skipped.
fn may_run() -> bool {
    if !is_root() {
        eprintln!("skipped: the OCI tests make containers, namespaces and taps, which needs root");
        return false;
    }
    for (program, package) in [
        ("podman", "podman"),
        ("ctr", "containerd"),
        ("containerd", "containerd"),
        ("runc", "runc"),
        ("nsenter", "util-linux"),
        ("iptables", "iptables"),
    ] {
        if !on_path(program) {
            runner::setup::ensure_package(program, package).expect("the OCI tools install");
        }
    }
    true
}

/// What every container test holds: the turn (`SERIAL`), the runtime's binary and a work
/// folder.
struct Session {
    _turn: MutexGuard<'static, ()>,
    runtime: PathBuf,
    work: tempfile::TempDir,
}

impl Session {
    /// `None` where the test may not run (see `may_run`).
    fn start() -> Option<Session> {
        let turn = SERIAL.lock().unwrap_or_else(|poison| poison.into_inner());
        if !may_run() {
            return None;
        }
        Some(Session {
            _turn: turn,
            runtime: runtime(),
            work: tempfile::tempdir().unwrap(),
        })
    }

    fn runtime(&self) -> &str {
        self.runtime.to_str().unwrap()
    }
}

fn on_path(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// Runs `command` with a time limit (`timeout`), capturing its output.
fn bounded(secs: u64, program: &str, args: &[&str]) -> Output {
    Command::new("timeout")
        .arg(secs.to_string())
        .arg(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|err| panic!("cannot run {program}: {err}"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Asserts that the command `what` succeeded, showing its stderr if not.
fn assert_ok(output: &Output, what: &str) {
    assert!(output.status.success(), "{what}: {}", text(&output.stderr));
}

/// The `uk-runtime` binary, built (debug) for this test.
fn runtime() -> PathBuf {
    static BUILT: Mutex<Option<PathBuf>> = Mutex::new(None);
    let mut built = BUILT.lock().unwrap_or_else(|poison| poison.into_inner());
    if let Some(path) = &*built {
        return path.clone();
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "-q", "-p", "uk-runtime"])
        .current_dir(runner::repo_root())
        .status()
        .expect("cargo runs");
    assert!(status.success(), "uk-runtime builds");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| runner::repo_root().join("target"), PathBuf::from);
    let path = target.join("debug/uk-runtime");
    assert!(path.is_file(), "{} exists", path.display());
    *built = Some(path.clone());
    path
}

/// The OCI archive of an example in `dir`, tagged `localhost/uk-test-<name>:1`.
fn image(dir: &Path, name: &str) -> (PathBuf, String) {
    let elf = runner::build_example(name).expect("the example builds");
    let files = runner::repo_root()
        .join("examples")
        .join(name)
        .join("static");
    let output = dir.join(format!("{name}.tar"));
    let tag = format!("uk-test-{name}:1");
    package(&PkgOptions {
        elf,
        tag: tag.clone(),
        output: output.clone(),
        files: files.is_dir().then_some(files),
        memory_mib: 32,
        args: Vec::new(),
        kernel_flags: Vec::new(),
        tcp_ports: vec![80],
    })
    .expect("the image packages");
    (output, format!("localhost/{tag}"))
}

/// podman with its storage in `dir`.
struct Podman {
    dir: tempfile::TempDir,
}

impl Podman {
    fn new() -> Self {
        Podman {
            dir: tempfile::tempdir().expect("a temporary folder"),
        }
    }

    /// `podman` and its global options.
    fn words(&self) -> Vec<String> {
        let root = self.dir.path().join("storage");
        let runroot = self.dir.path().join("run");
        [
            "podman",
            "--root",
            root.to_str().unwrap(),
            "--runroot",
            runroot.to_str().unwrap(),
            "--storage-driver",
            "vfs",
            "--cgroup-manager",
            "cgroupfs",
            "--events-backend",
            "none",
        ]
        .map(String::from)
        .to_vec()
    }

    fn run(&self, secs: u64, args: &[&str]) -> Output {
        let mut words = self.words();
        words.extend(args.iter().map(|arg| arg.to_string()));
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        bounded(secs, words[0], &words[1..])
    }

    /// `podman run OPTIONS` with `runtime` and the limits, then `IMAGE_AND_ARGS`, as words.
    fn run_words(&self, runtime: &str, options: &[&str], image_and_args: &[&str]) -> Vec<String> {
        let mut words = self.words();
        words.push("run".into());
        words.extend(options.iter().map(|word| word.to_string()));
        words.extend(["--runtime", runtime].map(String::from));
        words.extend(ULIMITS.map(String::from));
        words.extend(image_and_args.iter().map(|word| word.to_string()));
        words
    }

    /// [`Podman::run_words`], run.
    fn run_container(&self, runtime: &str, options: &[&str], image_and_args: &[&str]) -> Output {
        let words = self.run_words(runtime, options, image_and_args);
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        bounded(120, words[0], &words[1..])
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self.run(60, &["rm", "--all", "--force", "--time", "0"]);
        let _ = self.run(60, &["system", "reset", "--force"]);
    }
}

/// Polls `url` with curl (entered into `netns` if given) until it answers 200, for at most
/// `secs`.
fn wait_for_200(netns: Option<&str>, url: &str, secs: u64) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        let curl = [
            "curl",
            "-s",
            "-m",
            "5",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            url,
        ];
        let output = match netns {
            Some(netns) => {
                let mut args = vec!["netns", "exec", netns];
                args.extend(curl);
                bounded(10, "ip", &args)
            }
            None => bounded(10, curl[0], &curl[1..]),
        };
        if text(&output.stdout) == "200" {
            return true;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    false
}

/// What a container could leave behind: uk-runtime's processes, network namespaces of its
/// own, state directories under `root`.
fn assert_nothing_left(root: &Path) {
    let processes = text(&bounded(10, "pgrep", &["-af", "^[^ ]*uk-runtime init"]).stdout);
    assert!(
        processes.trim().is_empty(),
        "container processes left: {processes}"
    );
    let netns = text(&bounded(10, "ip", &["netns", "list"]).stdout);
    assert!(
        !netns.lines().any(|line| line.starts_with("uk-")),
        "namespaces left: {netns}"
    );
    let states: Vec<_> = std::fs::read_dir(root)
        .map(|dir| dir.flatten().map(|entry| entry.path()).collect())
        .unwrap_or_default();
    assert!(states.is_empty(), "state directories left: {states:?}");
}

#[test]
fn podman_runs_hello_and_serves_http() {
    let Some(session) = Session::start() else {
        return;
    };
    let runtime = session.runtime();
    let podman = Podman::new();
    // podman passes no --root: the runtime's default.
    let state_root = PathBuf::from("/run/uk-runtime");
    for name in ["hello", "faults", "http"] {
        let (archive, _) = image(session.work.path(), name);
        let loaded = podman.run(120, &["load", "-q", "-i", archive.to_str().unwrap()]);
        assert_ok(&loaded, "podman load");
    }

    let hello = podman.run_container(runtime, &["--rm"], &["localhost/uk-test-hello:1"]);
    assert!(
        text(&hello.stdout).contains("hello from a unikernel"),
        "{}\n{}",
        text(&hello.stdout),
        text(&hello.stderr)
    );
    assert_eq!(hello.status.code(), Some(0), "{}", text(&hello.stderr));

    // QEMU where the annotation asks for it (and where KVM is unusable).
    let on_qemu = podman.run_container(
        runtime,
        &["--rm", "--annotation", "org.unikernel.vmm=qemu"],
        &["localhost/uk-test-hello:1"],
    );
    assert!(
        text(&on_qemu.stdout).contains("hello from a unikernel"),
        "{}",
        text(&on_qemu.stderr)
    );
    assert_eq!(on_qemu.status.code(), Some(0));

    // With -t the guest's console is a terminal the runtime sends over --console-socket
    // (podman wants a terminal of its own: `script` gives it one).
    let words = podman.run_words(runtime, &["--rm", "-t"], &["localhost/uk-test-hello:1"]);
    let on_terminal = bounded(120, "script", &["-qec", &words.join(" "), "/dev/null"]);
    assert!(
        text(&on_terminal.stdout).contains("hello from a unikernel\r\n"),
        "{}",
        text(&on_terminal.stdout)
    );
    assert_eq!(on_terminal.status.code(), Some(0));

    // main's status becomes the container's; a fault's is non-zero, with the report.
    let exit = podman.run_container(
        runtime,
        &["--rm"],
        &["localhost/uk-test-faults:1", "exit", "7"],
    );
    assert_eq!(exit.status.code(), Some(7));
    let fault = podman.run_container(runtime, &["--rm"], &["localhost/uk-test-faults:1", "null"]);
    assert_eq!(fault.status.code(), Some(102), "{}", text(&fault.stderr));
    let log = text(&fault.stdout) + &text(&fault.stderr);
    assert!(
        log.contains("page fault") && log.contains("null pointer") && log.contains("faults::main"),
        "{log}"
    );

    let started = podman.run_container(
        runtime,
        &["-d", "--name", "uk-test-http", "-p", "18080:80"],
        &["localhost/uk-test-http:1"],
    );
    assert_ok(&started, "podman run -d");
    let served = wait_for_200(None, "http://127.0.0.1:18080/", 90);
    let logs = text(&podman.run(30, &["logs", "uk-test-http"]).stdout);
    assert!(
        served,
        "no 200 from the guest through podman's port; its log:\n{logs}"
    );
    assert_ok(
        &podman.run(60, &["stop", "-t", "5", "uk-test-http"]),
        "podman stop",
    );
    assert_ok(&podman.run(60, &["rm", "uk-test-http"]), "podman rm");
    assert_nothing_left(&state_root);
}

/// containerd on sockets and folders of its own, stopped when dropped.
struct Containerd {
    dir: tempfile::TempDir,
    process: std::process::Child,
}

impl Containerd {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.toml");
        let d = dir.path().display();
        std::fs::write(
            &config,
            format!(
                "version = 2\nroot = \"{d}/root\"\nstate = \"{d}/state\"\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n[grpc]\n  address = \"{d}/containerd.sock\"\n"
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.path().join("containerd.log")).unwrap();
        let process = Command::new("containerd")
            .arg("--config")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("containerd starts");
        let containerd = Containerd { dir, process };
        wait::until(
            Duration::from_secs(30),
            Duration::from_millis(200),
            || containerd.ctr(10, &["version"]).status.success(),
            || "containerd did not answer within 30 s".into(),
        );
        containerd
    }

    fn ctr(&self, secs: u64, args: &[&str]) -> Output {
        let socket = self.dir.path().join("containerd.sock");
        let mut all = vec!["ctr", "-a", socket.to_str().unwrap()];
        all.extend_from_slice(args);
        bounded(secs, all[0], &all[1..])
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

#[test]
fn ctr_runs_hello_and_serves_http() {
    let Some(session) = Session::start() else {
        return;
    };
    let runtime = session.runtime();
    let containerd = Containerd::start();
    let mut references = Vec::new();
    for name in ["hello", "http"] {
        let (archive, reference) = image(session.work.path(), name);
        let imported = containerd.ctr(120, &["images", "import", archive.to_str().unwrap()]);
        assert_ok(&imported, "ctr images import");
        references.push(reference);
    }
    let hello = containerd.ctr(
        120,
        &[
            "run",
            "--rm",
            "--runc-binary",
            runtime,
            &references[0],
            "uk-test-hello",
        ],
    );
    assert!(
        text(&hello.stdout).contains("hello from a unikernel"),
        "{}\n{}",
        text(&hello.stdout),
        text(&hello.stderr)
    );
    assert_eq!(hello.status.code(), Some(0));

    let started = containerd.ctr(
        120,
        &[
            "run",
            "-d",
            "--runc-binary",
            runtime,
            &references[1],
            "uk-test-http",
        ],
    );
    assert_ok(&started, "ctr run -d");
    // ctr sets up no network: the runtime gave the guest a namespace of its own.
    assert!(
        wait_for_200(Some("uk-uk-test-http"), "http://127.0.0.1/", 90),
        "no 200 from the guest in its namespace"
    );
    let killed = containerd.ctr(30, &["task", "kill", "uk-test-http"]);
    assert_ok(&killed, "ctr task kill");
    wait::until(
        Duration::from_secs(30),
        Duration::from_millis(200),
        || text(&containerd.ctr(10, &["task", "ls"]).stdout).contains("STOPPED"),
        || "the task did not stop within 30 s of SIGTERM".into(),
    );
    for what in ["task", "container"] {
        let deleted = containerd.ctr(30, &[what, "delete", "uk-test-http"]);
        assert_ok(&deleted, &format!("ctr {what} delete"));
    }
    // The runc shim's --root for the default namespace.
    assert_nothing_left(Path::new("/run/containerd/runc/default"));
}

/// A bundle of `rootfs` with `args`, and its config.json (a new network namespace).
fn bundle(dir: &Path, args: &[&str]) -> PathBuf {
    let mut spec = oci_spec::runtime::Spec::default();
    let mut process = spec.process().clone().unwrap_or_default();
    process.set_args(Some(args.iter().map(|arg| arg.to_string()).collect()));
    process.set_terminal(Some(false));
    spec.set_process(Some(process));
    let mut root = spec.root().clone().unwrap_or_default();
    root.set_readonly(Some(false));
    spec.set_root(Some(root));
    spec.save(dir.join("config.json")).unwrap();
    dir.to_path_buf()
}

/// Unpacks the layer of the archive at `archive` into `rootfs`.
fn unpack(archive: &Path, rootfs: &Path) {
    let mut outer = tar::Archive::new(std::fs::File::open(archive).unwrap());
    let staging = rootfs.with_extension("layout");
    outer.unpack(&staging).unwrap();
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(staging.join("index.json")).unwrap()).unwrap();
    let blob = |digest: &str| {
        staging
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:"))
    };
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(blob(index["manifests"][0]["digest"].as_str().unwrap())).unwrap(),
    )
    .unwrap();
    let layer = blob(manifest["layers"][0]["digest"].as_str().unwrap());
    tar::Archive::new(std::fs::File::open(layer).unwrap())
        .unpack(rootfs)
        .unwrap();
}

fn uk(runtime: &Path, root: &Path, args: &[&str]) -> Output {
    let mut all = vec![runtime.to_str().unwrap(), "--root", root.to_str().unwrap()];
    all.extend_from_slice(args);
    bounded(60, all[0], &all[1..])
}

/// `create`, whose container's process keeps the stdio it is given: files, so that
/// waiting for the output does not wait for the container.
fn create(runtime: &Path, root: &Path, work: &Path, args: &[&str]) -> (bool, String) {
    let stdout = std::fs::File::create(work.join("create.out")).unwrap();
    let stderr = std::fs::File::create(work.join("create.err")).unwrap();
    let mut command = Command::new("timeout");
    command
        .args([
            "60",
            runtime.to_str().unwrap(),
            "--root",
            root.to_str().unwrap(),
            "create",
        ])
        .args(args)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr);
    let status = command.status().expect("uk-runtime runs");
    let stderr = std::fs::read_to_string(work.join("create.err")).unwrap_or_default();
    (status.success(), stderr)
}

fn state_of(runtime: &Path, root: &Path, id: &str) -> serde_json::Value {
    let output = uk(runtime, root, &["state", id]);
    assert_ok(&output, "state");
    serde_json::from_slice(&output.stdout).expect("state prints JSON")
}

/// Waits until the runtime reports container `id` stopped; `what` names it if it does not
/// within 30 s.
fn wait_until_stopped(runtime: &Path, root: &Path, id: &str, what: &str) {
    wait::until(
        Duration::from_secs(30),
        Duration::from_millis(100),
        || state_of(runtime, root, id)["status"] == "stopped",
        || format!("{what} did not stop within 30 s"),
    );
}

#[test]
fn the_lifecycle_as_runc_prints_it() {
    let Some(session) = Session::start() else {
        return;
    };
    let (runtime, work) = (&session.runtime, &session.work);
    let root = work.path().join("state");
    let (archive, _) = image(work.path(), "http");
    let bundle_dir = work.path().join("bundle");
    unpack(&archive, &bundle_dir.join("rootfs"));
    bundle(&bundle_dir, &["/unikernel/kernel.elf"]);
    let pid_file = work.path().join("pid");
    let id = "uk-life";

    let (created, stderr) = create(
        runtime,
        &root,
        work.path(),
        &[
            "--bundle",
            bundle_dir.to_str().unwrap(),
            "--pid-file",
            pid_file.to_str().unwrap(),
            id,
        ],
    );
    assert!(created, "create: {stderr}");
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let state = state_of(runtime, &root, id);
    assert_eq!(state["status"], "created");
    assert_eq!(state["id"], id);
    assert_eq!(state["pid"], pid);
    assert_eq!(state["bundle"], bundle_dir.to_str().unwrap());
    assert!(
        state["ociVersion"].is_string()
            && state["created"].is_string()
            && state["rootfs"].is_string(),
        "{state}"
    );
    let ps = uk(runtime, &root, &["ps", "--format", "json", id]);
    assert_eq!(
        serde_json::from_slice::<Vec<i32>>(&ps.stdout).unwrap(),
        vec![pid]
    );
    let (again, stderr) = create(
        runtime,
        &root,
        work.path(),
        &["--bundle", bundle_dir.to_str().unwrap(), id],
    );
    assert!(!again && stderr.contains("already exists"), "{stderr}");

    let started = uk(runtime, &root, &["start", id]);
    assert_ok(&started, "start");
    assert_eq!(state_of(runtime, &root, id)["status"], "running");
    assert!(
        wait_for_200(Some("uk-uk-life"), "http://10.0.2.15/", 90),
        "the guest answers in its namespace"
    );
    let refused = uk(runtime, &root, &["delete", id]);
    assert!(!refused.status.success() && text(&refused.stderr).contains("not stopped: running"));

    let killed = uk(runtime, &root, &["kill", id, "SIGTERM"]);
    assert_ok(&killed, "kill");
    wait_until_stopped(runtime, &root, id, "the container, after SIGTERM,");
    assert_eq!(state_of(runtime, &root, id)["pid"], 0);
    let ps = uk(runtime, &root, &["ps", "--format", "json", id]);
    assert_eq!(
        serde_json::from_slice::<Vec<i32>>(&ps.stdout).unwrap(),
        Vec::<i32>::new()
    );
    assert_ok(&uk(runtime, &root, &["delete", id]), "delete");
    assert!(
        !uk(runtime, &root, &["state", id]).status.success(),
        "no state after delete"
    );
    assert_nothing_left(&root);

    let features = uk(runtime, &root, &["features"]);
    let features: serde_json::Value = serde_json::from_slice(&features.stdout).unwrap();
    assert!(features["ociVersionMax"].is_string(), "{features}");
}

#[test]
fn a_bundle_that_is_no_unikernel_goes_to_runc() {
    let Some(session) = Session::start() else {
        return;
    };
    let (runtime, work) = (&session.runtime, &session.work);
    let source = work.path().join("hello.c");
    std::fs::write(
        &source,
        "#include <unistd.h>\nint main(void) { write(1, \"static hello\\n\", 13); return 3; }\n",
    )
    .unwrap();
    let rootfs = work.path().join("bundle/rootfs");
    std::fs::create_dir_all(&rootfs).unwrap();
    let compiled = bounded(
        120,
        "gcc",
        &[
            "-static",
            "-Os",
            "-o",
            rootfs.join("hello").to_str().unwrap(),
            source.to_str().unwrap(),
        ],
    );
    assert_ok(&compiled, "gcc -static");
    let bundle_dir = bundle(&work.path().join("bundle"), &["/hello"]);
    let root = work.path().join("state");
    let id = "uk-not-a-unikernel";
    let (created, stderr) = create(
        runtime,
        &root,
        work.path(),
        &["--bundle", bundle_dir.to_str().unwrap(), id],
    );
    assert!(created, "create through runc: {stderr}");
    // runc's state, not ours.
    assert!(root.join(id).join("state.json").is_file());
    assert!(!root.join(id).join("uk-runtime.json").exists());
    let started = uk(runtime, &root, &["start", id]);
    assert_ok(&started, "start through runc");
    wait_until_stopped(runtime, &root, id, "runc's container");
    assert!(uk(runtime, &root, &["delete", id]).status.success());
    assert!(!root.join(id).exists());
    let output = std::fs::read_to_string(work.path().join("create.out")).unwrap();
    assert_eq!(
        output, "static hello\n",
        "the container's output, through runc"
    );
}

#[test]
fn the_same_app_packages_to_the_same_digest() {
    let work = tempfile::tempdir().unwrap();
    let elf = runner::build_example("http").expect("the example builds");
    let files = runner::repo_root().join("examples/http/static");
    let options = |output: PathBuf| PkgOptions {
        elf: elf.clone(),
        tag: "uk-test-http:1".into(),
        output,
        files: Some(files.clone()),
        memory_mib: 32,
        args: Vec::new(),
        kernel_flags: Vec::new(),
        tcp_ports: vec![80],
    };
    let first = package(&options(work.path().join("a.tar"))).unwrap();
    let second = package(&options(work.path().join("b.tar"))).unwrap();
    assert_eq!(first.manifest_digest, second.manifest_digest);
    assert_eq!(
        std::fs::read(work.path().join("a.tar")).unwrap(),
        std::fs::read(work.path().join("b.tar")).unwrap(),
        "the archives are the same bytes"
    );
    // A layout folder holds the same blobs, and the layer what the runtime reads.
    let layout = work.path().join("layout");
    let third = package(&options(layout.clone())).unwrap();
    assert_eq!(third.manifest_digest, first.manifest_digest);
    let manifest = layout
        .join("blobs/sha256")
        .join(first.manifest_digest.trim_start_matches("sha256:"));
    let manifest_bytes = std::fs::read(&manifest).unwrap();
    assert_eq!(
        format!("sha256:{}", runner::pkg::sha256(&manifest_bytes)),
        first.manifest_digest
    );
    let rootfs = work.path().join("rootfs");
    unpack(&work.path().join("a.tar"), &rootfs);
    let metadata = runner::pkg::ImageMetadata::read(&rootfs)
        .unwrap()
        .expect("metadata");
    assert_eq!(metadata, first.metadata);
    assert!(metadata.subsystems.iter().any(|name| name == "net"));
    assert_eq!(metadata.network.unwrap().tcp_ports, vec![80]);
    assert_eq!(
        std::fs::read(rootfs.join("unikernel/kernel.elf")).unwrap(),
        std::fs::read(&elf).unwrap()
    );
    assert!(
        rootfs.join("unikernel/files/index.html").is_file()
            || std::fs::read_dir(rootfs.join("unikernel/files"))
                .unwrap()
                .count()
                > 0
    );
}

/// A stand-in for a Kubernetes API server that answers discovery only (the kinds the
/// manifests use) and 404 for every object, which is all `kubectl apply --dry-run=client`
/// asks: it maps each kind to its resource, finds no live object and reports a create.
/// Returns its address; it serves until the test process ends.
fn discovery_server() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let resource = |name: &str, kind: &str, namespaced: bool| {
        serde_json::json!({"name": name, "singularName": "", "namespaced": namespaced, "kind": kind,
            "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"]})
    };
    let group = |name: &str| {
        serde_json::json!({"name": name, "versions": [{"groupVersion": format!("{name}/v1"), "version": "v1"}],
            "preferredVersion": {"groupVersion": format!("{name}/v1"), "version": "v1"}})
    };
    let documents: Vec<(String, serde_json::Value)> = vec![
        (
            "/api".into(),
            serde_json::json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": address.to_string()}]}),
        ),
        (
            "/apis".into(),
            serde_json::json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": [group("apps"), group("node.k8s.io")]}),
        ),
        (
            "/api/v1".into(),
            serde_json::json!({"kind": "APIResourceList", "groupVersion": "v1", "resources": [resource("services", "Service", true), resource("namespaces", "Namespace", false)]}),
        ),
        (
            "/apis/apps/v1".into(),
            serde_json::json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "apps/v1", "resources": [resource("deployments", "Deployment", true)]}),
        ),
        (
            "/apis/node.k8s.io/v1".into(),
            serde_json::json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "node.k8s.io/v1", "resources": [resource("runtimeclasses", "RuntimeClass", false)]}),
        ),
    ];
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let documents = documents.clone();
            std::thread::spawn(move || {
                use std::io::{BufRead, BufReader, Write};
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut stream = stream;
                loop {
                    let mut request = String::new();
                    if reader.read_line(&mut request).unwrap_or(0) == 0 {
                        return;
                    }
                    // The headers, up to the blank line (GETs have no body).
                    let mut line = String::new();
                    while reader.read_line(&mut line).unwrap_or(0) > 0 && line != "\r\n" {
                        line.clear();
                    }
                    let path = request.split_whitespace().nth(1).unwrap_or("/");
                    let path = path.split('?').next().unwrap_or(path);
                    let (status, body) = match documents.iter().find(|(known, _)| known == path) {
                        Some((_, body)) => ("200 OK", body.to_string()),
                        None => ("404 Not Found", serde_json::json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404}).to_string()),
                    };
                    let response = format!(
                        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    if stream.write_all(response.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    format!("http://{address}")
}

/// `kubectl apply --dry-run=client --validate=false -f dir` against [`discovery_server`].
fn kubectl_apply(dir: &Path) -> Output {
    let server = discovery_server();
    let home = tempfile::tempdir().unwrap();
    Command::new("timeout")
        .args([
            "60",
            "kubectl",
            "apply",
            "--dry-run=client",
            "--validate=false",
            "-f",
        ])
        .arg(dir)
        .args(["--server", &server, "--namespace", "default"])
        .env("HOME", home.path())
        .env_remove("KUBECONFIG")
        .stdin(Stdio::null())
        .output()
        .expect("kubectl runs")
}

#[test]
fn the_kubernetes_manifests_apply() {
    if !on_path("kubectl") {
        eprintln!("skipped: kubectl is not installed");
        return;
    }
    let k8s = runner::repo_root().join("runner/oci/k8s");
    let output = kubectl_apply(&k8s);
    let stdout = text(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        text(&output.stderr)
    );
    for object in [
        "deployment.apps/http created (dry run)",
        "service/http created (dry run)",
        "runtimeclass.node.k8s.io/unikernel created (dry run)",
    ] {
        assert!(stdout.contains(object), "{object} in:\n{stdout}");
    }
    // The stand-in refuses what a server would: a kind it does not know.
    let broken = tempfile::tempdir().unwrap();
    let deployment = std::fs::read_to_string(k8s.join("http.yaml")).unwrap();
    std::fs::write(
        broken.path().join("http.yaml"),
        deployment.replace("kind: Deployment", "kind: Deploymnt"),
    )
    .unwrap();
    let refused = kubectl_apply(broken.path());
    assert!(
        !refused.status.success()
            && text(&refused.stderr).contains("no matches for kind \"Deploymnt\"")
    );
    // The Deployment asks for the class the RuntimeClass defines, and the containerd
    // snippet names that handler with uk-runtime as runc's binary.
    assert!(deployment.contains("runtimeClassName: unikernel"));
    let snippet = std::fs::read_to_string(k8s.join("containerd-config.toml")).unwrap();
    assert!(
        snippet.contains("containerd.runtimes.unikernel.options]")
            && snippet.contains("BinaryName = \"/usr/local/bin/uk-runtime\"")
    );
}
