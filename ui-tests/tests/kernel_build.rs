//! What an app's user sees: each case in `tests/kernel/` is compiled the way an app is
//! (`#![no_std]`, `#![no_main]`, for `x86_64-unknown-none`, with the rustflags of
//! `examples/.cargo/config.toml`), and cargo's output is compared with the `.stderr` next
//! to it. trybuild's cases (`tests/ui/`) are host builds with `std`, where an error
//! the kernel build adds (a missing allocator, panic handler or entry) cannot show.
//!
//! The cases share one scratch app and one target directory under cargo's
//! `CARGO_TARGET_TMPDIR`, so only the first run builds the kernel crates. Regenerate the
//! snapshots with `TRYBUILD=overwrite cargo test -p ui-tests --test kernel_build`, then
//! read every changed `.stderr`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::{env, fs};

/// Messages that only a kernel build adds after one of ours, each wrong advice there.
const SECOND_ERRORS: &[&str] = &[
    "no global memory allocator found",
    "`#[panic_handler]` function required",
    "`main` function not found",
    "unwinding panics are not supported",
];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("ui-tests is a folder of the workspace")
        .to_path_buf()
}

/// The scratch app: a package of its own (not a member of the host workspace) whose
/// `.cargo/config.toml` and profiles are the examples'.
fn scratch_app(root: &Path) -> PathBuf {
    let workspace = workspace();
    let app = root.join("app");
    fs::create_dir_all(app.join("src")).unwrap();
    fs::create_dir_all(app.join(".cargo")).unwrap();
    fs::copy(
        workspace.join("examples/.cargo/config.toml"),
        app.join(".cargo/config.toml"),
    )
    .unwrap();
    // The versions the repository tests, as a new app gets them.
    if !app.join("Cargo.lock").exists() {
        fs::copy(
            workspace.join("examples/Cargo.lock"),
            app.join("Cargo.lock"),
        )
        .unwrap();
    }
    let manifest = format!(
        r#"[package]
name = "app"
version = "0.1.0"
edition = "2024"
publish = false

[dependencies]
unikernel = {{ path = "{}" }}

[workspace]

[profile.dev]
panic = "abort"
opt-level = 1

[profile.release]
panic = "abort"
"#,
        workspace.join("core").display()
    );
    fs::write(app.join("Cargo.toml"), manifest).unwrap();
    app
}

/// Builds `source` as the scratch app; cargo's stderr, normalised.
fn build(app: &Path, target_dir: &Path, source: &str) -> (bool, String) {
    fs::write(app.join("src/main.rs"), source).unwrap();
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .args(["build", "--quiet", "--color", "never"])
        .current_dir(app)
        .env("CARGO_TARGET_DIR", target_dir)
        .env("CARGO_TERM_COLOR", "never")
        // The host test's own settings must not reach the kernel build.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("CARGO_BUILD_RUSTFLAGS")
        .env_remove("RUSTC_WRAPPER")
        .output()
        .expect("cargo runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let workspace = workspace();
    let normalised: String = stderr
        .replace(&app.display().to_string(), "$APP")
        .replace(&workspace.display().to_string(), "$WORKSPACE")
        .lines()
        .map(|line| line.trim_end().to_owned() + "\n")
        .collect();
    (output.status.success(), normalised)
}

#[test]
fn kernel_builds_show_only_our_errors() {
    let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("kernel-build");
    let app = scratch_app(&root);
    let target_dir = root.join("target");
    let overwrite = env::var_os("TRYBUILD").is_some_and(|value| value == "overwrite");

    let cases_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/kernel");
    let mut cases: Vec<PathBuf> = fs::read_dir(&cases_dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "rs"))
        .collect();
    cases.sort();
    assert!(!cases.is_empty(), "no cases in {}", cases_dir.display());

    let mut failures = Vec::new();
    for case in &cases {
        let name = case.file_stem().unwrap().to_string_lossy().into_owned();
        let source = fs::read_to_string(case).unwrap();
        let (success, stderr) = build(&app, &target_dir, &source);
        let expected_path = case.with_extension("stderr");
        let should_pass = name.starts_with("pass_");
        if success != should_pass {
            failures.push(format!(
                "{name}: expected the build to {}, it did not:\n{stderr}",
                if should_pass { "succeed" } else { "fail" }
            ));
            continue;
        }
        if let Some(second) = SECOND_ERRORS.iter().find(|m| stderr.contains(*m)) {
            failures.push(format!(
                "{name}: the kernel build adds \"{second}\":\n{stderr}"
            ));
        }
        if overwrite {
            fs::write(&expected_path, &stderr).unwrap();
            continue;
        }
        let expected = fs::read_to_string(&expected_path).unwrap_or_default();
        if expected != stderr {
            failures.push(format!(
                "{name}: stderr differs from {}\n--- expected\n{expected}--- actual\n{stderr}",
                expected_path.display()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
