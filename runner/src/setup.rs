//! Prerequisites: the `x86_64-unknown-none` target and QEMU. `cargo uk setup` installs what
//! is missing (QEMU only as root); `run`, `boot` and `test` call it first.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::error::{Error, Result};
use crate::qemu::QEMU;

/// The target the images are built for.
pub const TARGET: &str = "x86_64-unknown-none";
/// The Debian package that has `qemu-system-x86_64`.
pub(crate) const QEMU_PACKAGE: &str = "qemu-system-x86";

/// What a command needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Needs {
    /// The Rust target, to build images.
    pub target: bool,
    /// QEMU, to boot them.
    pub qemu: bool,
}

impl Needs {
    /// Everything.
    pub const ALL: Needs = Needs {
        target: true,
        qemu: true,
    };
}

/// Where `qemu-system-x86_64` is: `$RUNNER_QEMU` if set, else the first on `PATH`.
pub fn qemu_path() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("RUNNER_QEMU") {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(QEMU))
        .find(|candidate| is_executable(candidate))
}

#[cfg(unix)]
fn is_executable(path: &std::path::Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(path: &std::path::Path) -> bool {
    path.is_file()
}

/// The error for a missing QEMU.
pub(crate) fn qemu_missing() -> Error {
    Error::new(format!(
        "{QEMU} is not installed: run `apt-get install -y {QEMU_PACKAGE}` (as root)"
    ))
}

/// Whether the runner runs as root (`id -u` prints 0).
pub(crate) fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .stderr(Stdio::null())
        .output()
        .is_ok_and(|out| out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "0")
}

/// Whether `rustup target list --installed` output lists the target.
pub(crate) fn target_listed(installed: &str) -> bool {
    installed.lines().any(|line| line.trim() == TARGET)
}

/// Whether the target is installed; `None` when rustup cannot tell (not installed).
fn target_installed() -> Option<bool> {
    let out = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| target_listed(&String::from_utf8_lossy(&out.stdout)))
}

/// Makes sure what `needs` asks for is there, installing what is missing where it can.
pub(crate) fn ensure(needs: Needs, quiet: bool) -> Result<()> {
    if needs.target {
        ensure_target(quiet)?;
    }
    if needs.qemu {
        ensure_qemu(quiet)?;
    }
    Ok(())
}

fn ensure_target(quiet: bool) -> Result<()> {
    match target_installed() {
        Some(true) => Ok(()),
        // Without rustup the toolchain came from elsewhere; cargo will say if the target is
        // missing.
        None => Ok(()),
        Some(false) => {
            if !quiet {
                eprintln!("cargo uk: installing the {TARGET} target (rustup target add {TARGET})");
            }
            let status = Command::new("rustup")
                .args(["target", "add", TARGET])
                .stdin(Stdio::null())
                .status()
                .map_err(|err| Error::new(format!("cannot run rustup: {err}")))?;
            if status.success() {
                Ok(())
            } else {
                Err(Error::new(format!(
                    "`rustup target add {TARGET}` failed; run it yourself and see why"
                )))
            }
        }
    }
}

/// Installs the Debian package `package` for `program` with apt-get as root; an error
/// that says how to get it otherwise.
pub fn ensure_package(program: &str, package: &str) -> Result<()> {
    if !is_root() {
        return Err(Error::new(format!(
            "{program} is missing: install the {package} package (apt-get install {package})"
        )));
    }
    eprintln!("cargo uk: {program} is missing; installing {package} with apt-get");
    let apt = |args: &[&str]| {
        Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    };
    let installed =
        apt(&["install", "-y", package]) || (apt(&["update"]) && apt(&["install", "-y", package]));
    if !installed {
        return Err(Error::new(format!(
            "installing {package} failed: run `apt-get update && apt-get install -y {package}` and see why"
        )));
    }
    Ok(())
}

fn ensure_qemu(quiet: bool) -> Result<()> {
    if qemu_path().is_some() {
        return Ok(());
    }
    if !is_root() {
        return Err(qemu_missing());
    }
    if !quiet {
        eprintln!("cargo uk: {QEMU} is missing; installing {QEMU_PACKAGE} with apt-get");
    }
    let apt = |args: &[&str]| {
        Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    };
    if !apt(&["update"]) || !apt(&["install", "-y", QEMU_PACKAGE]) {
        return Err(Error::new(format!(
            "installing {QEMU_PACKAGE} failed: run `apt-get update && apt-get install -y {QEMU_PACKAGE}` and see why"
        )));
    }
    if qemu_path().is_none() {
        return Err(Error::new(format!(
            "{QEMU_PACKAGE} is installed but {QEMU} is not on PATH"
        )));
    }
    Ok(())
}
