//! Runner options an app sets for itself: the `[package.metadata.unikernel]` table of its
//! Cargo.toml, and `UNIKERNEL_RUNNER_FLAGS` for one `cargo run` (which the app's
//! `.cargo/boot` puts on the command line). The table's keys are the long names of the
//! options of `cargo uk boot` (`timeout = 60` is `--timeout 60`); an option given on the
//! command line replaces the table's.

use std::path::Path;

use cargo_metadata::MetadataCommand;
use clap::Command;
use serde_json::{Map, Value};

use crate::boot::Exit;
use crate::error::{Error, Result};

/// Where an app keeps its runner options, as its user writes it.
pub const TABLE: &str = "[package.metadata.unikernel]";
/// The variable the app's `.cargo/boot` adds to the runner's command line.
pub const FLAGS_VAR: &str = "UNIKERNEL_RUNNER_FLAGS";

/// The options that choose the network: one given on the command line replaces all of
/// the table's, since they exclude each other.
const NETWORK: &[&str] = &["forward", "tap", "no-net"];

/// Options whose values are paths: in the table they are relative to the app's folder.
const PATHS: &[&str] = &["files", "disk"];

/// Makes the table's relative paths (`files = "static"`) relative to `app_dir`, the folder
/// of the app's Cargo.toml, wherever the runner was started.
pub fn resolve_paths(table: &mut Map<String, Value>, app_dir: &Path) {
    for key in PATHS {
        if let Some(Value::String(path)) = table.get_mut(*key) {
            *path = app_dir.join(&*path).to_string_lossy().into_owned();
        }
    }
}

/// Options of `boot` that are not the app's to set.
const NOT_SETTINGS: &[&str] = &["help", "version", "manifest-path"];

/// The `[package.metadata.unikernel]` table of the package at `manifest` (empty if it
/// has none).
pub fn read_table(manifest: &Path) -> Result<Map<String, Value>> {
    let metadata = MetadataCommand::new()
        .manifest_path(manifest)
        .no_deps()
        .exec()
        .map_err(|err| {
            Error::new(format!(
                "cannot read {}: {}",
                manifest.display(),
                first_line(&err.to_string())
            ))
        })?;
    let wanted = manifest.canonicalize().ok();
    let package = metadata
        .packages
        .iter()
        .find(|package| package.manifest_path.canonicalize().ok() == wanted)
        .or(metadata.packages.first());
    match package.and_then(|package| package.metadata.get("unikernel")) {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(table)) => Ok(table.clone()),
        Some(_) => Err(Error::new(format!(
            "{TABLE} in {} must be a table of runner options",
            manifest.display()
        ))),
    }
}

/// Command-line words for the table's settings that the command line does not give
/// itself (`given` says, by argument id, which it gives), checked against the options of
/// `command` (`boot`'s); `Err` says in one sentence which key or value is wrong.
pub fn words(
    table: &Map<String, Value>,
    command: &Command,
    given: impl Fn(&str) -> bool,
) -> std::result::Result<Vec<String>, String> {
    let network_given = command
        .get_arguments()
        .filter(|arg| arg.get_long().is_some_and(|long| NETWORK.contains(&long)))
        .any(|arg| given(arg.get_id().as_str()));
    let settings = || {
        command.get_arguments().filter(|arg| {
            !arg.is_hide_set()
                && arg
                    .get_long()
                    .is_some_and(|long| !NOT_SETTINGS.contains(&long))
        })
    };
    let mut words = Vec::new();
    for (key, value) in table {
        let Some(arg) = settings().find(|arg| arg.get_long() == Some(key.as_str())) else {
            let known: Vec<&str> = settings().filter_map(|arg| arg.get_long()).collect();
            return Err(format!(
                "`{key}` is not an option of the runner; expected one of: {}",
                known.join(", ")
            ));
        };
        if given(arg.get_id().as_str()) || (network_given && NETWORK.contains(&key.as_str())) {
            continue;
        }
        let takes_value = arg.get_action().takes_values();
        let values = match value {
            Value::Array(items) => items.iter().collect(),
            single => vec![single],
        };
        for value in values {
            match (value, takes_value) {
                (Value::Bool(true), false) => words.push(format!("--{key}")),
                (Value::Bool(false), false) => {}
                (Value::String(text), true) => words.push(format!("--{key}={text}")),
                (Value::Number(number), true) => words.push(format!("--{key}={number}")),
                (_, false) => return Err(format!("`{key}` is a switch: write `{key} = true`")),
                (_, true) => {
                    return Err(format!(
                        "`{key}` takes a string or a number (`{key} = \"...\"`), or a list of them"
                    ));
                }
            }
        }
    }
    Ok(words)
}

/// How to change the option a failed boot asks for, for a user who started it with
/// `cargo run` in the app at `manifest`: a sentence naming the table and the variable.
/// `exit` and `serial` are the boot's end and the guest's output.
pub fn hint(exit: &Exit, serial: &str, memory_mib: u32, manifest: &Path) -> Option<String> {
    let (want, key, value) = if let Exit::TimedOut(timeout) = exit {
        let longer = (timeout.as_secs() * 2).max(60);
        ("to give it longer", "timeout", longer.to_string())
    } else if asks_for_memory(serial) {
        (
            "to give the VM more memory",
            "memory",
            (u64::from(memory_mib) * 2).to_string(),
        )
    } else {
        return None;
    };
    Some(format!(
        "{want}, set `{key} = {value}` under {TABLE} in {} (or for one run: {FLAGS_VAR}=\"--{key} {value}\" cargo run)",
        manifest.display()
    ))
}

/// Whether the guest's output says that the VM has too little memory.
fn asks_for_memory(serial: &str) -> bool {
    serial.contains("--memory") || serial.contains("give the VM more memory")
}

fn first_line(text: &str) -> &str {
    text.lines()
        .find(|line| !line.trim().is_empty())
        .unwrap_or(text)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use clap::{Arg, ArgAction, Command};
    use serde_json::{Value, json};

    use super::{hint, resolve_paths, words};
    use crate::boot::Exit;

    fn command() -> Command {
        Command::new("boot")
            .arg(Arg::new("timeout").long("timeout"))
            .arg(
                Arg::new("forwards")
                    .long("forward")
                    .action(ArgAction::Append),
            )
            .arg(Arg::new("tap").long("tap").action(ArgAction::SetTrue))
            .arg(Arg::new("no_net").long("no-net").action(ArgAction::SetTrue))
            .arg(Arg::new("stats").long("stats").action(ArgAction::SetTrue))
            .arg(Arg::new("manifest_path").long("manifest-path"))
            .arg(Arg::new("files").long("files"))
            .arg(Arg::new("disk").long("disk"))
    }

    fn table(value: Value) -> serde_json::Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn paths_in_the_table_are_the_apps() {
        let mut settings = table(json!({"files": "static", "disk": "/abs/data.img", "timeout": 5}));
        resolve_paths(&mut settings, Path::new("/apps/http"));
        assert_eq!(settings["files"], "/apps/http/static");
        assert_eq!(settings["disk"], "/abs/data.img");
        assert_eq!(settings["timeout"], 5);
        let words = words(&settings, &command(), |_| false).unwrap();
        assert!(
            words.contains(&"--files=/apps/http/static".to_string()),
            "{words:?}"
        );
    }

    #[test]
    fn settings_become_options_unless_the_command_line_gives_them() {
        let settings = table(json!({
            "timeout": 60, "forward": ["8080:80", "udp:7007:7"], "stats": true, "tap": false
        }));
        let none = words(&settings, &command(), |_| false).unwrap();
        assert_eq!(
            none,
            [
                "--forward=8080:80",
                "--forward=udp:7007:7",
                "--stats",
                "--timeout=60"
            ]
        );
        let timeout_given = words(&settings, &command(), |id| id == "timeout").unwrap();
        assert!(
            !timeout_given
                .iter()
                .any(|word| word.starts_with("--timeout"))
        );
        // One network option on the command line replaces the table's network as a whole.
        let no_net = words(&settings, &command(), |id| id == "no_net").unwrap();
        assert_eq!(no_net, ["--stats", "--timeout=60"]);
    }

    #[test]
    fn a_wrong_key_or_value_is_one_sentence() {
        let unknown = words(&table(json!({"timout": 3})), &command(), |_| false).unwrap_err();
        assert!(
            unknown.contains("`timout` is not an option")
                && unknown.contains("expected one of: timeout, forward, tap, no-net, stats"),
            "{unknown}"
        );
        let switch = words(&table(json!({"tap": "yes"})), &command(), |_| false).unwrap_err();
        assert!(switch.contains("`tap = true`"), "{switch}");
        let manifest = words(&table(json!({"manifest-path": "x"})), &command(), |_| false);
        assert!(
            manifest
                .unwrap_err()
                .contains("`manifest-path` is not an option")
        );
        let nested = words(&table(json!({"timeout": {"a": 1}})), &command(), |_| false);
        assert!(nested.unwrap_err().contains("string or a number"));
    }

    #[test]
    fn hints_name_the_table_and_the_variable() {
        let manifest = Path::new("/apps/demo/Cargo.toml");
        let timed_out = Exit::TimedOut(std::time::Duration::from_secs(30));
        assert_eq!(
            hint(&timed_out, "", 32, manifest).unwrap(),
            "to give it longer, set `timeout = 60` under [package.metadata.unikernel] in \
             /apps/demo/Cargo.toml (or for one run: UNIKERNEL_RUNNER_FLAGS=\"--timeout 60\" cargo run)"
        );
        let too_small = "64 MiB do not fit: the largest free range of the VM's memory is 30.8 MiB; give the VM more memory";
        let memory = hint(&Exit::Status(103), too_small, 32, manifest).unwrap();
        assert!(
            memory.contains("`memory = 64`") && memory.contains("\"--memory 64\""),
            "{memory}"
        );
        assert_eq!(hint(&Exit::Status(3), "bye", 32, manifest), None);
    }
}
