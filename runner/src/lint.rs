//! The checks `cargo uk test` runs before the tests: formatting and clippy's lints, with
//! warnings as errors, on the host workspace and on the examples workspace (built for
//! x86_64-unknown-none by its own `.cargo/config.toml`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::{Error, Result};

/// One check: a cargo command run in a folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// The folder cargo runs in (its `.cargo/config.toml` applies).
    pub dir: PathBuf,
    /// The arguments after `cargo`.
    pub args: Vec<&'static str>,
}

impl Check {
    /// The command as a person would type it, for messages.
    pub fn display(&self, root: &Path) -> String {
        let dir = self.dir.strip_prefix(root).unwrap_or(&self.dir);
        let prefix = if dir.as_os_str().is_empty() {
            String::new()
        } else {
            format!("cd {} && ", dir.display())
        };
        format!("{prefix}cargo {}", self.args.join(" "))
    }
}

/// The checks, in the order they run: the cheap formatting ones first.
pub fn checks(root: &Path) -> Vec<Check> {
    let examples = root.join("examples");
    let fmt = vec!["fmt", "--all", "--check"];
    let clippy = vec![
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ];
    vec![
        Check {
            dir: root.to_path_buf(),
            args: fmt.clone(),
        },
        Check {
            dir: examples.clone(),
            args: fmt,
        },
        Check {
            dir: root.to_path_buf(),
            args: clippy,
        },
        // The examples are binaries for a target without a test harness: no --all-targets.
        Check {
            dir: examples,
            args: vec!["clippy", "--workspace", "--", "-D", "warnings"],
        },
    ]
}

/// Runs every check; `Ok(None)` when all pass, else the sentence naming the first failure
/// (cargo's own messages are above it).
pub fn run() -> Result<Option<String>> {
    let root = crate::build::repo_root();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    for check in checks(&root) {
        eprintln!("cargo uk: {}", check.display(&root));
        let status = Command::new(&cargo)
            .args(&check.args)
            .current_dir(&check.dir)
            .stdin(Stdio::null())
            .status()
            .map_err(|err| Error::new(format!("cannot run cargo: {err}")))?;
        if !status.success() {
            return Ok(Some(format!(
                "`{}` failed (its messages are above); fix it, or pass --no-lint to run the tests anyway",
                check.display(&root)
            )));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_workspaces_get_fmt_and_clippy_with_warnings_denied() {
        let root = Path::new("/repo");
        let shown: Vec<String> = checks(root).iter().map(|c| c.display(root)).collect();
        assert_eq!(
            shown,
            [
                "cargo fmt --all --check",
                "cd examples && cargo fmt --all --check",
                "cargo clippy --workspace --all-targets -- -D warnings",
                "cd examples && cargo clippy --workspace -- -D warnings",
            ]
        );
    }
}
