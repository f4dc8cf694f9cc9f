//! `--gdb`: the guest stops before its first instruction and waits for gdb on a TCP port
//! of 127.0.0.1. Under QEMU that is QEMU's own gdb stub (`-gdb tcp:...:PORT -S`); the
//! runner prints the one command that attaches with the image's symbols. The image the
//! VMM boots is the unstripped ELF (or a copy of it at the same addresses), so gdb reads
//! functions, source lines and variables from that same file.

use std::path::Path;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::monitor::Vmm;

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
pub(crate) fn prepare(elf: &Path, vmm: Vmm, port: u16) -> Result<Vec<String>> {
    if vmm == Vmm::Monitor {
        return Err(Error::new(
            "--gdb runs under QEMU's gdb stub: use --vmm qemu (this host's KVM refuses \
             guest debugging, see runner/README.md)",
        ));
    }
    let elf = std::path::absolute(elf).unwrap_or_else(|_| elf.to_path_buf());
    eprintln!(
        "cargo uk: the guest waits for gdb on 127.0.0.1:{port}; attach with:\n  {}",
        attach_command(&elf, port)
    );
    Ok(vec![
        "-gdb".into(),
        format!("tcp:127.0.0.1:{port}"),
        "-S".into(),
    ])
}

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
        let args = prepare(Path::new("k.elf"), Vmm::Qemu, 4321).unwrap();
        assert_eq!(args, ["-gdb", "tcp:127.0.0.1:4321", "-S"]);
        let refused = prepare(Path::new("k.elf"), Vmm::Monitor, 4321).unwrap_err();
        assert!(refused.message().contains("--vmm qemu"), "{refused}");
    }
}
