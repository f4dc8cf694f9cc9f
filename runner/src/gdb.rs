//! `--gdb`: the guest stops before its first instruction and waits for gdb on a TCP port
//! of 127.0.0.1. Under QEMU that is QEMU's own gdb stub (`-gdb tcp:...:PORT -S`); on the
//! monitor it is the monitor's (`unikernel_vmm::gdb`, on KVM's guest-debug interface).
//! The runner prints the one command that attaches with the image's symbols. The image the
//! VMM boots is the unstripped ELF (or a copy of it at the same addresses), so gdb reads
//! functions, source lines and variables from that same file.

use std::io::Write as _;
use std::net::TcpListener;
use std::path::Path;
use std::time::Duration;

use crate::boot::Boot;
use crate::cli::BootOptions;
use crate::error::{Error, Result};

/// How long a debugged guest may run: a person is stepping through it, so the boot's
/// usual timeout does not apply.
pub(crate) const SESSION_TIMEOUT: Duration = Duration::from_secs(3600);

/// The gdb command line that attaches to a guest of `elf` waiting on `port`.
pub fn attach_command(elf: &Path, port: u16) -> String {
    format!(
        "gdb -q {} -ex 'target remote 127.0.0.1:{port}'",
        shell_quoted(&elf.display().to_string())
    )
}

/// Announces the session and returns the QEMU arguments that start it.
pub(crate) fn prepare(elf: &Path, port: u16) -> Vec<String> {
    announce(elf, port);
    vec!["-gdb".into(), format!("tcp:127.0.0.1:{port}"), "-S".into()]
}

fn announce(elf: &Path, port: u16) {
    let elf = std::path::absolute(elf).unwrap_or_else(|_| elf.to_path_buf());
    eprintln!(
        "cargo uk: the guest waits for gdb on 127.0.0.1:{port}; attach with:\n  {}",
        attach_command(&elf, port)
    );
}

/// Boots `elf` on the monitor under its gdb stub; returns the runner's exit status. The
/// serial output goes to the terminal as it comes; `serial` receives all of it.
pub(crate) fn boot_on_monitor(elf: &Path, opts: &BootOptions, serial: &mut String) -> Result<i32> {
    let port = opts.gdb.unwrap_or(DEFAULT_PORT);
    let listener = TcpListener::bind(("127.0.0.1", port))
        .map_err(|err| Error::new(format!("--gdb: cannot listen on 127.0.0.1:{port}: {err}")))?;
    let mut boot = Boot::new(elf).args(opts.kernel_args.iter().cloned());
    if let Some(levels) = &opts.log {
        boot = boot.kernel_flag(format!("unikernel.log={levels}"));
    }
    let config = unikernel_vmm::VmConfig {
        memory_mib: opts.memory_mib,
        cmdline: boot.cmdline(),
        cpus: opts.cpus,
        ..Default::default()
    };
    unikernel_vmm::gdb::check(elf, &config)?;
    announce(elf, port);
    let mut bytes = Vec::new();
    let run = unikernel_vmm::gdb::serve(
        elf,
        &config,
        listener,
        opts.timeout.max(SESSION_TIMEOUT),
        &mut |chunk| {
            bytes.extend_from_slice(chunk);
            let mut stdout = std::io::stdout();
            let _ = stdout.write_all(chunk);
            let _ = stdout.flush();
        },
    )?;
    *serial = String::from_utf8_lossy(&bytes).replace("\r\n", "\n");
    Ok(match run.exit {
        unikernel_vmm::VmExit::Status(status) => status,
        unikernel_vmm::VmExit::Reset => crate::boot::STATUS_RESET,
        unikernel_vmm::VmExit::Fault { report, .. } => {
            eprintln!("cargo uk: {report}");
            crate::boot::STATUS_QEMU_FAILED
        }
        unikernel_vmm::VmExit::Stopped | unikernel_vmm::VmExit::Halted { .. } => {
            if !run.gdb_left_first {
                eprintln!("cargo uk: the guest was stopped after the session's time limit");
            }
            crate::boot::STATUS_TIMEOUT
        }
    })
}

/// Under QEMU with KVM, gdb's `break` writes `int3` into the guest, which a software-emulated
/// KVM (a nested one, as on the project's machines) cannot run: the guest stalls there.
pub(crate) const KVM_BREAKPOINT_NOTE: &str = "cargo uk: under KVM, set breakpoints with `hbreak` \
     (the CPU's debug registers, at most 4): a KVM that emulates the guest cannot run the \
     `int3` of `break`; TCG (--accel tcg) and the monitor take both";

/// The port of a bare `--gdb`, gdb's and QEMU's usual one.
pub(crate) const DEFAULT_PORT: u16 = 1234;

/// `text` as one word of a POSIX shell.
fn shell_quoted(text: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._-+=:,@".contains(c);
    if !text.is_empty() && text.chars().all(plain) {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_attach_command_names_the_elf_and_the_port() {
        assert_eq!(
            attach_command(Path::new("/w/target/release/hello"), 1234),
            "gdb -q /w/target/release/hello -ex 'target remote 127.0.0.1:1234'"
        );
        assert_eq!(
            attach_command(Path::new("/my app/it's"), 9),
            r"gdb -q '/my app/it'\''s' -ex 'target remote 127.0.0.1:9'"
        );
    }

    #[test]
    fn qemu_waits_for_gdb_before_the_first_instruction() {
        let args = prepare(Path::new("k.elf"), 4321);
        assert_eq!(args, ["-gdb", "tcp:127.0.0.1:4321", "-S"]);
    }
}
