//! `cargo uk new`: a user app outside the repository, ready for `cargo run`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::build::repo_root;
use crate::error::{Error, Result};
use crate::setup::TARGET;

/// The files of a new app, as (relative path, contents).
///
/// `repo` is the repository (the app depends on `<repo>/core` and boots through
/// `<repo>/runner`); `host` is the host's target triple: the runner is built for it
/// explicitly, because cargo reads `.cargo/config.toml` from where it runs, and the app's
/// config says `target = "x86_64-unknown-none"`.
pub(crate) fn template(name: &str, repo: &Path, host: &str) -> Vec<(PathBuf, String)> {
    let repo = repo.display().to_string();
    let core = toml_string(&format!("{repo}/core"));
    let runner_manifest = toml_string(&format!("{repo}/runner/Cargo.toml"));
    let cargo_toml = format!(
        r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2024"
publish = false

[dependencies]
unikernel = {{ path = {core} }}

[[bin]]
name = "{name}"
test = false
bench = false

[profile.release]
panic = "abort"
opt-level = "s"
lto = true
codegen-units = 1

[profile.dev]
panic = "abort"

# An app of its own, not a member of a workspace it happens to be inside.
[workspace]
"#
    );
    let config = format!(
        r#"[build]
target = "{TARGET}"

[target.{TARGET}]
rustflags = ["-C", "link-arg=-Tunikernel.ld", "-C", "relocation-model=static"]
# `cargo run` boots the image in QEMU; `cargo run -- a b` passes `a b` to the kernel.
runner = ["cargo", "run", "-q", "--manifest-path", {runner_manifest}, "--target", "{host}", "--", "boot"]
"#
    );
    let main_rs = format!(
        r#"#![no_std]
#![no_main]

use unikernel::prelude::*;

#[unikernel(console, heap = "1 MiB")]
fn main() -> ExitCode {{
    println!("hello from {name}");
    ExitCode::SUCCESS
}}
"#
    );
    vec![
        (PathBuf::from("Cargo.toml"), cargo_toml),
        (PathBuf::from(".cargo/config.toml"), config),
        (PathBuf::from("src/main.rs"), main_rs),
        (PathBuf::from(".gitignore"), "/target\n".to_string()),
    ]
}

/// A TOML basic string.
fn toml_string(text: &str) -> String {
    let mut out = String::from("\"");
    for ch in text.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            ch if ch.is_control() => out.push_str(&format!("\\u{:04X}", ch as u32)),
            ch => out.push(ch),
        }
    }
    out.push('"');
    out
}

/// The crate name for a folder: its name, lower-cased, with `-` for anything else.
pub(crate) fn crate_name_for(path: &Path) -> Option<String> {
    let base = path.file_name()?.to_str()?;
    let name: String = base
        .chars()
        .map(|ch| match ch {
            'a'..='z' | '0'..='9' | '_' | '-' => ch,
            'A'..='Z' => ch.to_ascii_lowercase(),
            _ => '-',
        })
        .collect();
    let name = name.trim_matches('-').to_string();
    check_crate_name(&name).ok().map(|()| name)
}

/// Whether `name` can be a package name.
pub(crate) fn check_crate_name(name: &str) -> Result<(), String> {
    let first = name.chars().next().ok_or("the name is empty")?;
    if !first.is_ascii_alphabetic() {
        return Err(format!("`{name}` must start with a letter"));
    }
    if let Some(bad) = name
        .chars()
        .find(|ch| !(ch.is_ascii_alphanumeric() || *ch == '_' || *ch == '-'))
    {
        return Err(format!(
            "`{name}` contains `{bad}`; use letters, digits, `-` and `_`"
        ));
    }
    Ok(())
}

/// The host's target triple, from `rustc -vV`.
pub(crate) fn host_triple() -> Result<String> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let out = Command::new(rustc)
        .arg("-vV")
        .stdin(Stdio::null())
        .output()
        .map_err(|err| Error::new(format!("cannot run rustc: {err}")))?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|line| line.strip_prefix("host: "))
        .map(|host| host.trim().to_string())
        .ok_or_else(|| Error::new("`rustc -vV` did not name the host"))
}

/// Creates the app at `path` (which must not exist or be an empty folder).
pub fn create(path: &Path, name: Option<&str>) -> Result<(PathBuf, String)> {
    let name = match name {
        Some(name) => {
            check_crate_name(name).map_err(|reason| Error::new(format!("--name: {reason}")))?;
            name.to_string()
        }
        None => crate_name_for(path).ok_or_else(|| {
            Error::new(format!(
                "cannot make a crate name from {}; give one with --name",
                path.display()
            ))
        })?,
    };
    let path = std::path::absolute(path).unwrap_or(path.to_path_buf());
    if path.exists() {
        let empty = std::fs::read_dir(&path)
            .map(|mut entries| entries.next().is_none())
            .unwrap_or(false);
        if !empty {
            return Err(Error::new(format!(
                "{} already exists and is not an empty folder",
                path.display()
            )));
        }
    }
    let repo = std::path::absolute(repo_root()).unwrap_or(repo_root());
    let repo = repo.canonicalize().unwrap_or(repo);
    for (relative, contents) in template(&name, &repo, &host_triple()?) {
        let file = path.join(relative);
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|err| Error::new(format!("cannot create {}: {err}", parent.display())))?;
        }
        std::fs::write(&file, contents)
            .map_err(|err| Error::new(format!("cannot write {}: {err}", file.display())))?;
    }
    Ok((path, name))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::new::{check_crate_name, crate_name_for, template};

    #[test]
    fn names() {
        assert_eq!(
            crate_name_for(Path::new("/tmp/My App")),
            Some("my-app".into())
        );
        assert_eq!(crate_name_for(Path::new("/tmp/9lives")), None);
        assert!(check_crate_name("hello_world-2").is_ok());
        assert!(check_crate_name("hé").is_err());
        assert!(check_crate_name("").is_err());
    }

    #[test]
    fn files() {
        let files = template("demo", Path::new("/repo"), "x86_64-unknown-linux-gnu");
        let get = |name: &str| {
            files
                .iter()
                .find(|(path, _)| path == Path::new(name))
                .map(|(_, text)| text.clone())
                .unwrap()
        };
        let manifest = get("Cargo.toml");
        assert!(manifest.contains("name = \"demo\""));
        assert!(manifest.contains("unikernel = { path = \"/repo/core\" }"));
        assert!(manifest.contains("\n[workspace]\n"));
        assert!(
            manifest
                .contains("panic = \"abort\"\nopt-level = \"s\"\nlto = true\ncodegen-units = 1")
        );
        let config = get(".cargo/config.toml");
        assert!(config.contains("target = \"x86_64-unknown-none\""));
        assert!(config.contains(
            r#"rustflags = ["-C", "link-arg=-Tunikernel.ld", "-C", "relocation-model=static"]"#
        ));
        assert!(config.contains(
            r#"runner = ["cargo", "run", "-q", "--manifest-path", "/repo/runner/Cargo.toml", "--target", "x86_64-unknown-linux-gnu", "--", "boot"]"#
        ));
        let main = get("src/main.rs");
        assert!(main.contains("#[unikernel(console, heap = \"1 MiB\")]"));
        assert!(main.contains("println!(\"hello from demo\");"));
    }
}
