//! Building images with cargo; the ELF is found in cargo's JSON artifact messages.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use cargo_metadata::Message;

use crate::error::{Error, Result};
use crate::setup::TARGET;

/// What `cargo uk run` boots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RunTarget {
    /// `examples/<name>`.
    Example(String),
    /// A built ELF.
    Elf(PathBuf),
    /// The app at this manifest (`--manifest-path`), with `-p <package>`.
    Manifest(PathBuf, Option<String>),
}

/// An existing file, or anything that looks like a path, is an ELF; otherwise an example.
pub(crate) fn classify_target(target: &str) -> RunTarget {
    let path = PathBuf::from(target);
    if path.is_file() || target.contains('/') || target.ends_with(".elf") {
        RunTarget::Elf(path)
    } else {
        RunTarget::Example(target.to_string())
    }
}

/// The repository root (the runner's parent folder, fixed when the runner is compiled).
pub fn repo_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().unwrap_or(manifest_dir).to_path_buf()
}

/// The names of the examples (folders of `examples/` with a Cargo.toml), sorted.
pub(crate) fn example_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(repo_root().join("examples"))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|entry| entry.path().join("Cargo.toml").is_file())
        .filter_map(|entry| entry.file_name().into_string().ok())
        .collect();
    names.sort();
    names
}

/// The floor kernel, the reference every boot figure is a ratio to, for tests: as
/// `floor_path`, once per process; panics if the build fails, as [`example_elf`] does.
pub fn floor_elf() -> PathBuf {
    match floor_source() {
        FloorSource::Example => example_elf(FLOOR),
        FloorSource::File(path) => path,
    }
}

/// The floor kernel: `$RUNNER_FLOOR` if set, else `examples/floor` built like any example.
pub(crate) fn floor_path(quiet: bool) -> Result<PathBuf> {
    match floor_source() {
        FloorSource::Example => build_example_with(FLOOR, quiet),
        FloorSource::File(path) => Ok(path),
    }
}

const FLOOR: &str = "floor";

enum FloorSource {
    Example,
    File(PathBuf),
}

fn floor_source() -> FloorSource {
    match std::env::var_os("RUNNER_FLOOR") {
        Some(path) => FloorSource::File(PathBuf::from(path)),
        None => FloorSource::Example,
    }
}

/// Builds `examples/<name>` in release mode and returns its ELF.
pub fn build_example(name: &str) -> Result<PathBuf> {
    build_example_with(name, true)
}

/// [`build_example`] once per process and example, for tests that boot the same example
/// many times; panics with cargo's error if the build fails.
pub fn example_elf(name: &str) -> PathBuf {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static BUILT: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let mut built = BUILT
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    built
        .entry(name.to_string())
        .or_insert_with(|| {
            build_example(name).unwrap_or_else(|err| panic!("building {name}: {err}"))
        })
        .clone()
}

/// [`build_example`], with cargo's progress shown or not.
pub(crate) fn build_example_with(name: &str, quiet: bool) -> Result<PathBuf> {
    let examples = repo_root().join("examples");
    if !examples.join(name).join("Cargo.toml").is_file() {
        let names = example_names();
        return Err(Error::new(if names.is_empty() {
            format!("there is no example named `{name}` (examples/ has none yet)")
        } else {
            format!(
                "there is no example named `{name}` (there are: {})",
                names.join(", ")
            )
        }));
    }
    CargoBuild {
        manifest_path: examples.join("Cargo.toml"),
        package: Some(name.to_string()),
        release: true,
        quiet,
    }
    .run()
}

/// One `cargo build` of an image for `x86_64-unknown-none`.
#[derive(Debug, Clone)]
pub struct CargoBuild {
    /// The manifest; cargo runs in its folder, so that folder's `.cargo/config.toml`
    /// (target, rustflags) applies as it does for `cargo build` there.
    pub manifest_path: PathBuf,
    /// `-p <package>`.
    pub package: Option<String>,
    pub release: bool,
    /// Passes `-q` to cargo.
    pub quiet: bool,
}

impl CargoBuild {
    /// The cargo arguments.
    pub fn args(&self) -> Vec<String> {
        let mut args = vec![
            "build".to_string(),
            "--manifest-path".to_string(),
            self.manifest_path.display().to_string(),
            "--target".to_string(),
            TARGET.to_string(),
            "--message-format=json-render-diagnostics".to_string(),
        ];
        if self.release {
            args.push("--release".into());
        }
        if let Some(package) = &self.package {
            args.push("-p".into());
            args.push(package.clone());
        }
        if self.quiet {
            args.push("-q".into());
        }
        args
    }

    /// Runs cargo and returns the path of the binary it built.
    pub fn run(&self) -> Result<PathBuf> {
        let manifest =
            std::path::absolute(&self.manifest_path).unwrap_or(self.manifest_path.clone());
        if !manifest.is_file() {
            return Err(Error::new(format!("{} does not exist", manifest.display())));
        }
        let dir = manifest.parent().unwrap_or(Path::new("."));
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let build = CargoBuild {
            manifest_path: manifest.clone(),
            ..self.clone()
        };
        let out = Command::new(cargo)
            .args(build.args())
            .current_dir(dir)
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output()
            .map_err(|err| Error::new(format!("cannot run cargo: {err}")))?;
        let what = match &self.package {
            Some(package) => format!("`{package}`"),
            None => manifest.display().to_string(),
        };
        if !out.status.success() {
            return Err(Error::new(format!(
                "building {what} failed (cargo's messages are above)"
            )));
        }
        let artifacts = parse_artifacts(&String::from_utf8_lossy(&out.stdout));
        pick_executable(&artifacts, self.package.as_deref())
            .map_err(|reason| Error::new(format!("building {what}: {reason}")))
    }
}

/// A binary cargo reported building.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Artifact {
    /// The target's name (a binary's name).
    pub target_name: String,
    pub executable: PathBuf,
}

/// The `compiler-artifact` messages that name an executable, from cargo's JSON output.
pub(crate) fn parse_artifacts(stdout: &str) -> Vec<Artifact> {
    Message::parse_stream(stdout.as_bytes())
        .filter_map(|message| match message.ok()? {
            Message::CompilerArtifact(artifact) => Some(Artifact {
                target_name: artifact.target.name,
                executable: artifact.executable?.into_std_path_buf(),
            }),
            _ => None,
        })
        .collect()
}

/// The one executable of the build: the one named after `package` when there are several.
pub(crate) fn pick_executable(
    artifacts: &[Artifact],
    package: Option<&str>,
) -> Result<PathBuf, String> {
    match artifacts {
        [] => Err("cargo built no binary (is there a `src/main.rs`?)".into()),
        [one] => Ok(one.executable.clone()),
        several => {
            if let Some(found) = package
                .and_then(|name| several.iter().find(|artifact| artifact.target_name == name))
            {
                return Ok(found.executable.clone());
            }
            let names: Vec<&str> = several.iter().map(|a| a.target_name.as_str()).collect();
            Err(format!(
                "it built several binaries ({}); pick one with -p",
                names.join(", ")
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use crate::build::{Artifact, parse_artifacts, pick_executable};

    #[test]
    fn artifacts() {
        let stdout = r#"{"reason":"compiler-artifact","package_id":"path+file:///r/core#unikernel@0.1.0","manifest_path":"/r/core/Cargo.toml","target":{"kind":["lib"],"crate_types":["lib"],"name":"unikernel","src_path":"/r/core/src/lib.rs","edition":"2024","doc":true,"doctest":true,"test":true},"profile":{"opt_level":"s","debuginfo":0,"debug_assertions":false,"overflow_checks":false,"test":false},"features":[],"filenames":["/r/examples/target/x86_64-unknown-none/release/libunikernel.rlib"],"executable":null,"fresh":true}
{"reason":"compiler-artifact","package_id":"path+file:///r/examples/hello#0.1.0","manifest_path":"/r/examples/hello/Cargo.toml","target":{"kind":["bin"],"crate_types":["bin"],"name":"hello","src_path":"/r/examples/hello/src/main.rs","edition":"2024","doc":true,"doctest":false,"test":true},"profile":{"opt_level":"s","debuginfo":0,"debug_assertions":false,"overflow_checks":false,"test":false},"features":[],"filenames":["/r/examples/target/x86_64-unknown-none/release/hello"],"executable":"/r/examples/target/x86_64-unknown-none/release/hello","fresh":false}
{"reason":"build-finished","success":true}
not json: a line cargo's own output may hold
"#;
        let artifacts = parse_artifacts(stdout);
        assert_eq!(artifacts.len(), 1);
        assert_eq!(artifacts[0].target_name, "hello");
        assert_eq!(
            pick_executable(&artifacts, Some("hello")),
            Ok(PathBuf::from(
                "/r/examples/target/x86_64-unknown-none/release/hello"
            ))
        );
        assert!(pick_executable(&[], None).is_err());
        let two = [
            Artifact {
                target_name: "a".into(),
                executable: "/a".into(),
            },
            Artifact {
                target_name: "b".into(),
                executable: "/b".into(),
            },
        ];
        assert_eq!(pick_executable(&two, Some("b")), Ok(PathBuf::from("/b")));
        assert!(pick_executable(&two, None).unwrap_err().contains("a, b"));
    }

    #[test]
    fn cargo_arguments() {
        let build = crate::build::CargoBuild {
            manifest_path: "/r/examples/Cargo.toml".into(),
            package: Some("hello".into()),
            release: true,
            quiet: true,
        };
        assert_eq!(
            build.args().join(" "),
            "build --manifest-path /r/examples/Cargo.toml --target x86_64-unknown-none \
             --message-format=json-render-diagnostics --release -p hello -q"
        );
    }
}
