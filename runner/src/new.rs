//! `cargo uk new`: a user app outside the repository, ready for `cargo run`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::build::repo_root;
use crate::error::{Error, Result};
use crate::setup::TARGET;

/// The build profiles of a new app or crate of functions, as the repository's examples
/// have them (examples/Cargo.toml).
const PROFILES: &str = r#"# Kernels cannot unwind, and even a debug image must fit the 1 MiB the linker script gives
# it, so dev builds optimise a little. Debug info stays in the ELF (never loaded, gone when
# stripped) for gdb and backtraces.
[profile.release]
debug = true
panic = "abort"
opt-level = "s"
lto = true
codegen-units = 1

[profile.dev]
panic = "abort"
opt-level = 1
"#;

/// The target's flags of a new app or crate of functions (`.cargo/config.toml`).
const RUSTFLAGS: &str = r#"# Frame pointers let a panic or a CPU exception print its chain of return addresses.
rustflags = ["-C", "link-arg=-Tunikernel.ld", "-C", "relocation-model=static", "-C", "force-frame-pointers=yes"]"#;

/// The `[package]` and `[dependencies]` of a new app or crate of functions: it depends on
/// the repository's `core`.
fn package_head(name: &str, repo: &Path) -> String {
    let core = toml_string(&format!("{}/core", repo.display()));
    format!(
        r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2024"
publish = false

[dependencies]
unikernel = {{ path = {core} }}
"#
    )
}

/// The files of a new app, as (relative path, contents, executable).
///
/// `repo` is the repository: the app depends on `<repo>/core`, and its cargo runner
/// (`.cargo/boot`) boots the image with the repository's runner, built in the repository
/// as `cargo uk` builds it, so that `cargo uk new` and the app's `cargo run` share one
/// build of it.
pub(crate) fn template(name: &str, repo: &Path) -> Vec<(PathBuf, String, bool)> {
    let package = package_head(name, repo);
    let cargo_toml = format!(
        r#"{package}
[[bin]]
name = "{name}"
test = false
bench = false

# Options of the runner for `cargo run`: any option of `cargo uk boot` by its long name
# (`cargo uk help boot`), e.g. `timeout = 60`, `memory = 64`, `forward = ["8080:80"]`,
# `vmm = "monitor"`; for one run, UNIKERNEL_RUNNER_FLAGS="--timeout 60" cargo run.
[package.metadata.unikernel]

{PROFILES}
# An app of its own, not a member of a workspace it happens to be inside.
[workspace]
"#
    );
    let config = format!(
        r#"[build]
target = "{TARGET}"

[target.{TARGET}]
{RUSTFLAGS}
# `cargo run` boots the image in a VM; `cargo run -- a b` passes `a b` to the app.
runner = ".cargo/boot"
"#
    );
    let boot = format!(
        r#"#!/bin/sh
# cargo's runner for this app: boots the image cargo built (the first argument) with the
# repository's runner, `cargo uk boot`, built in the repository as `cargo uk` builds it.
# The other arguments go to the app. The runner's options come from
# [package.metadata.unikernel] in Cargo.toml and, for one run, from UNIKERNEL_RUNNER_FLAGS
# (UNIKERNEL_RUNNER_FLAGS="--timeout 60" cargo run), which wins.
elf=$1
shift
case $elf in /*) ;; *) elf=$PWD/$elf ;; esac
app=$(cd "$(dirname "$0")/.." && pwd) || exit 1
manifest=${{CARGO_MANIFEST_PATH:-$app/Cargo.toml}}
cd {repo} || exit 1
# The flags are split into words, without expanding `*` and the like.
set -f
# shellcheck disable=SC2086
exec cargo run -q -p runner -- boot --manifest-path "$manifest" $UNIKERNEL_RUNNER_FLAGS "$elf" "$@"
"#,
        repo = shell_quote(&repo.display().to_string())
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
        (PathBuf::from("Cargo.toml"), cargo_toml, false),
        (PathBuf::from(".cargo/config.toml"), config, false),
        (PathBuf::from(".cargo/boot"), boot, true),
        (PathBuf::from("src/main.rs"), main_rs, false),
        (PathBuf::from(".gitignore"), "/target\n".to_string(), false),
    ]
}

/// The files of a new crate of functions (`cargo uk new --functions`): a library, built
/// for the target like an app, whose images `cargo uk functions build` makes.
pub(crate) fn functions_template(name: &str, repo: &Path) -> Vec<(PathBuf, String, bool)> {
    let package = package_head(name, repo);
    let cargo_toml = format!(
        r#"{package}
# A library of functions built for the unikernel target: `cargo uk functions build`
# (in the unikernel repository) makes one image per `#[unikernel::function]`.
[lib]
test = false
doctest = false
bench = false

{PROFILES}
# A crate of its own, not a member of a workspace it happens to be inside.
[workspace]
"#
    );
    let config = format!(
        r#"[build]
target = "{TARGET}"

[target.{TARGET}]
{RUSTFLAGS}
"#
    );
    let lib_rs =
        r#"//! Serverless functions: `cargo uk functions build <this folder>` (in the unikernel
//! repository) makes one unikernel per function, and `cargo uk serve <this folder>`
//! answers each route's requests with it.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::format;
use unikernel::prelude::*;

#[unikernel::function(route = "GET /hello")]
fn hello(request: Request) -> Response {
    let name = request.query_param("name").unwrap_or("world");
    Response::text(format!("hello, {name}
"))
}

#[unikernel::function(route = "POST /echo", max_request = "2 MiB", heap = "8 MiB")]
fn echo(request: Request) -> Response {
    Response::bytes(request.into_body())
}
"#
        .to_string();
    vec![
        (PathBuf::from("Cargo.toml"), cargo_toml, false),
        (PathBuf::from(".cargo/config.toml"), config, false),
        (PathBuf::from("src/lib.rs"), lib_rs, false),
        (
            PathBuf::from(".gitignore"),
            "/target
"
            .to_string(),
            false,
        ),
    ]
}

/// What `cargo uk new` creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Template {
    /// An app: `#[unikernel] fn main`, booted by `cargo run`.
    App,
    /// A crate of functions: `#[unikernel::function]`s, built by `cargo uk functions build`.
    Functions,
}

/// A word for `sh`, in single quotes.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
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
    Some(name.trim_matches('-').to_string())
}

/// Rust's keywords, reserved words included (edition 2024): a crate cannot be named so.
const KEYWORDS: &[&str] = &[
    "abstract", "as", "async", "await", "become", "box", "break", "const", "continue", "crate",
    "do", "dyn", "else", "enum", "extern", "false", "final", "fn", "for", "gen", "if", "impl",
    "in", "let", "loop", "macro", "match", "mod", "move", "mut", "override", "priv", "pub", "ref",
    "return", "self", "static", "struct", "super", "trait", "true", "try", "type", "typeof",
    "unsafe", "unsized", "use", "virtual", "where", "while", "yield",
];

/// The toolchain's own crates: an app named so would shadow them.
const TOOLCHAIN_CRATES: &[&str] = &["core", "std", "alloc", "proc_macro", "test"];

/// Folders cargo makes in a target directory, which a binary of that name would clash with.
const CARGO_DIRS: &[&str] = &["build", "deps", "examples", "incremental"];

/// Whether `name` can be a new app's package name; the reason in one sentence if not.
pub(crate) fn check_crate_name(name: &str) -> Result<(), String> {
    let first = name.chars().next().ok_or("the name is empty")?;
    if let Some(bad) = name
        .chars()
        .find(|ch| !(ch.is_ascii_alphanumeric() || *ch == '_' || *ch == '-'))
    {
        return Err(format!(
            "`{name}` contains `{bad}`; use letters, digits, `-` and `_`"
        ));
    }
    if !first.is_ascii_alphabetic() {
        return Err(format!("`{name}` must start with a letter"));
    }
    // Cargo reads `-` as `_` in a crate's name: `proc-macro` is `proc_macro`.
    let crate_name = name.replace('-', "_");
    if KEYWORDS.contains(&crate_name.as_str()) || crate_name == "Self" {
        return Err(format!(
            "`{name}` is a Rust keyword and cannot name a crate"
        ));
    }
    if TOOLCHAIN_CRATES.contains(&crate_name.as_str()) {
        return Err(format!(
            "`{name}` is the name of a crate of Rust's own library and would shadow it"
        ));
    }
    if CARGO_DIRS.contains(&name) {
        return Err(format!(
            "`{name}` would clash with the folder of that name cargo makes in `target/`"
        ));
    }
    if crate_name == "unikernel" || crate_name.starts_with("unikernel_") {
        return Err(format!(
            "`{name}` is taken by the crates of this repository, which the app depends on"
        ));
    }
    Ok(())
}

/// `path` resolved through its nearest existing ancestor, so that a folder yet to be
/// made is compared with the repository as the file system sees it (links followed).
fn resolved(path: &Path) -> PathBuf {
    let mut existing = path.to_path_buf();
    let mut rest = Vec::new();
    while !existing.exists() {
        let Some(last) = existing.components().next_back() else {
            return path.to_path_buf();
        };
        rest.push(last.as_os_str().to_os_string());
        if !existing.pop() {
            return path.to_path_buf();
        }
    }
    let mut resolved = existing.canonicalize().unwrap_or(existing);
    for name in rest.iter().rev() {
        // Not yet on disk, so `..` is taken as written: the folder above.
        if name == ".." {
            resolved.pop();
        } else if name != "." {
            resolved.push(name);
        }
    }
    resolved
}

/// Whether `path` (absolute) is `repo` (canonical) or inside it.
fn is_inside(path: &Path, repo: &Path) -> bool {
    resolved(path).starts_with(repo)
}

/// The app's `Cargo.lock`: the examples' lock, the versions the repository builds and tests
/// its images with. Cargo drops the examples' own entries and adds the app's at its first
/// build, keeping every other version.
pub(crate) fn lock_source(repo: &Path) -> PathBuf {
    repo.join("examples").join("Cargo.lock")
}

/// Creates the app at `path` (which must not exist or be an empty folder); says what it
/// does on stderr unless `quiet`.
pub fn create(path: &Path, name: Option<&str>, quiet: bool) -> Result<(PathBuf, String)> {
    create_from(Template::App, path, name, quiet)
}

/// [`create`], from `template`.
pub fn create_from(
    template: Template,
    path: &Path,
    name: Option<&str>,
    quiet: bool,
) -> Result<(PathBuf, String)> {
    let name = match name {
        Some(name) => {
            check_crate_name(name).map_err(|reason| Error::new(format!("--name: {reason}")))?;
            name.to_string()
        }
        None => {
            let name = crate_name_for(path).unwrap_or_default();
            check_crate_name(&name).map_err(|reason| {
                Error::new(format!(
                    "cannot name the crate after {}: {reason}; give a name with --name",
                    path.display()
                ))
            })?;
            name
        }
    };
    let path = std::path::absolute(path).unwrap_or(path.to_path_buf());
    let repo = std::path::absolute(repo_root()).unwrap_or(repo_root());
    let repo = repo.canonicalize().unwrap_or(repo);
    if is_inside(&path, &repo) {
        return Err(Error::new(format!(
            "{} is inside the repository ({}): create the app outside it, e.g. `cargo uk new ~/{name}`",
            path.display(),
            repo.display()
        )));
    }
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
    let say = |message: String| {
        if !quiet {
            eprintln!("cargo uk: {message}");
        }
    };
    say(format!("creating `{name}` in {}", path.display()));
    let files = match template {
        Template::App => self::template(&name, &repo),
        Template::Functions => functions_template(&name, &repo),
    };
    for (relative, contents, executable) in files {
        let file = path.join(&relative);
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|err| Error::new(format!("cannot create {}: {err}", parent.display())))?;
        }
        std::fs::write(&file, contents)
            .map_err(|err| Error::new(format!("cannot write {}: {err}", file.display())))?;
        if executable {
            make_executable(&file)?;
        }
        say(format!("  wrote {}", relative.display()));
    }
    let lock = lock_source(&repo);
    if lock.is_file() {
        let copy = path.join("Cargo.lock");
        std::fs::copy(&lock, &copy)
            .map_err(|err| Error::new(format!("cannot write {}: {err}", copy.display())))?;
        prune_lock(&path);
        say(format!(
            "  wrote Cargo.lock: the dependency versions the repository tests ({})",
            lock.display()
        ));
    }
    Ok((path, name))
}

/// Lets cargo drop the examples' entries from the copied lock and add the app's, without
/// the network (every other entry is locked); if that cannot be done offline, the app's
/// first build does it, with the same versions.
fn prune_lock(app: &Path) {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let _ = Command::new(cargo)
        .args(["metadata", "--offline", "--format-version", "1"])
        .current_dir(app)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

#[cfg(unix)]
fn make_executable(file: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o755))
        .map_err(|err| Error::new(format!("cannot make {} executable: {err}", file.display())))
}

#[cfg(not(unix))]
fn make_executable(_file: &Path) -> Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::build::repo_root;
    use crate::new::{check_crate_name, crate_name_for, create, is_inside, template};

    #[test]
    fn names() {
        assert_eq!(
            crate_name_for(Path::new("/tmp/My App")),
            Some("my-app".into())
        );
        assert!(check_crate_name("hello_world-2").is_ok());
        assert!(
            check_crate_name("9lives")
                .unwrap_err()
                .contains("start with a letter")
        );
        assert!(check_crate_name("hé").unwrap_err().contains("contains `é`"));
        assert!(
            check_crate_name("a.b")
                .unwrap_err()
                .contains("contains `.`")
        );
        assert!(check_crate_name("").is_err());
    }

    #[test]
    fn keywords_and_reserved_names_are_refused_in_one_sentence() {
        for keyword in [
            "crate", "fn", "self", "Self", "async", "gen", "yield", "try", "type",
        ] {
            let reason = check_crate_name(keyword).unwrap_err();
            assert!(reason.contains("is a Rust keyword"), "{keyword}: {reason}");
        }
        for toolchain in ["core", "std", "alloc", "test", "proc_macro", "proc-macro"] {
            let reason = check_crate_name(toolchain).unwrap_err();
            assert!(
                reason.contains("Rust's own library"),
                "{toolchain}: {reason}"
            );
        }
        for taken in ["unikernel", "unikernel-net", "unikernel_heap"] {
            assert!(check_crate_name(taken).unwrap_err().contains("taken"));
        }
        assert!(check_crate_name("deps").unwrap_err().contains("target/"));
        for reason in
            ["crate", "core", "deps", "unikernel"].map(|n| check_crate_name(n).unwrap_err())
        {
            assert!(!reason.contains('\n') && !reason.ends_with('.'), "{reason}");
        }
        // Names that merely contain one are fine.
        for fine in ["crates", "fn-app", "my-core", "testing", "unikernels"] {
            assert!(check_crate_name(fine).is_ok(), "{fine}");
        }
    }

    #[test]
    fn a_folder_named_like_a_keyword_needs_a_name() {
        let base = std::env::temp_dir().join(format!("uk-new-keyword-{}", std::process::id()));
        let err = create(&base.join("crate"), None, true).unwrap_err();
        assert!(
            err.message().contains("`crate` is a Rust keyword") && err.message().contains("--name"),
            "{err}"
        );
        assert!(!base.exists(), "nothing is created");
        let err = create(&base.join("app"), Some("fn"), true).unwrap_err();
        assert!(
            err.message().starts_with("--name: `fn` is a Rust keyword"),
            "{err}"
        );
        assert!(!base.exists(), "nothing is created");
    }

    #[test]
    fn a_path_inside_the_repository_is_refused() {
        // A stand-in repository, so that a failing check creates nothing in the real one.
        let folder = tempfile::tempdir().unwrap();
        let repo = folder.path().canonicalize().unwrap().join("repo");
        std::fs::create_dir_all(repo.join("runner")).unwrap();
        let outside = repo.parent().unwrap();
        for inside in [
            repo.clone(),
            repo.join("myapp"),
            repo.join("examples/not-yet/deeper"),
            repo.join("runner/../myapp"),
            // From outside, through a folder that does not exist yet.
            outside.join("not-yet/../repo/myapp"),
            outside.join("./repo/./myapp"),
        ] {
            assert!(is_inside(&inside, &repo), "{}", inside.display());
        }
        for elsewhere in [
            outside.join("app"),
            outside.join("repo-app"),
            repo.join("../app"),
            repo.join("not-yet/../../app"),
        ] {
            assert!(!is_inside(&elsewhere, &repo), "{}", elsewhere.display());
        }
        #[cfg(unix)]
        {
            // Through a link into the repository.
            std::os::unix::fs::symlink(&repo, outside.join("link")).unwrap();
            assert!(is_inside(&outside.join("link/myapp"), &repo));
        }

        let err = create(&repo_root().join("myapp"), None, true).unwrap_err();
        assert!(
            err.message().contains("is inside the repository")
                && err.message().contains("create the app outside it"),
            "{err}"
        );
    }

    fn file(files: &[(std::path::PathBuf, String, bool)], name: &str) -> String {
        files
            .iter()
            .find(|(path, _, _)| path == Path::new(name))
            .map(|(_, text, _)| text.clone())
            .unwrap_or_else(|| panic!("the template has no {name}"))
    }

    #[test]
    fn files() {
        let files = template("demo", Path::new("/repo's"));
        let manifest = file(&files, "Cargo.toml");
        assert!(manifest.contains("name = \"demo\""));
        assert!(manifest.contains("unikernel = { path = \"/repo's/core\" }"));
        assert!(manifest.contains("\n[workspace]\n"));
        assert!(manifest.contains("\n[package.metadata.unikernel]\n"));
        let config = file(&files, ".cargo/config.toml");
        assert!(config.contains("target = \"x86_64-unknown-none\""));
        // The same rustflags line as the repository's examples build with.
        let examples = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/.cargo/config.toml"),
        )
        .unwrap();
        let rustflags = |text: &str| {
            text.lines()
                .find(|line| line.starts_with("rustflags = "))
                .map(str::to_owned)
        };
        assert_eq!(rustflags(&config), rustflags(&examples));
        assert!(config.contains("runner = \".cargo/boot\""));
        let boot = file(&files, ".cargo/boot");
        assert!(boot.starts_with("#!/bin/sh\n"));
        assert!(boot.contains(r"cd '/repo'\''s' || exit 1"), "{boot}");
        assert!(boot.contains(
            r#"exec cargo run -q -p runner -- boot --manifest-path "$manifest" $UNIKERNEL_RUNNER_FLAGS "$elf" "$@""#
        ));
        let executable: Vec<_> = files
            .iter()
            .filter(|(_, _, x)| *x)
            .map(|(p, _, _)| p)
            .collect();
        assert_eq!(executable, [Path::new(".cargo/boot")]);
        let main = file(&files, "src/main.rs");
        assert!(main.contains("#[unikernel(console, heap = \"1 MiB\")]"));
        assert!(main.contains("println!(\"hello from demo\");"));
    }

    /// The `[profile.<name>]` section of a manifest, as its lines.
    fn profile(manifest: &str, name: &str) -> Vec<String> {
        let header = format!("[profile.{name}]");
        manifest
            .lines()
            .skip_while(|line| line.trim() != header)
            .skip(1)
            .take_while(|line| !line.trim().is_empty() && !line.starts_with('['))
            .filter(|line| !line.trim_start().starts_with('#'))
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn the_profiles_are_the_examples() {
        let examples = std::fs::read_to_string(repo_root().join("examples/Cargo.toml")).unwrap();
        let app = file(&template("demo", Path::new("/repo")), "Cargo.toml");
        for name in ["dev", "release"] {
            let expected = profile(&examples, name);
            assert!(
                !expected.is_empty(),
                "examples/Cargo.toml has no [profile.{name}]"
            );
            assert_eq!(profile(&app, name), expected, "[profile.{name}]");
        }
    }
}
