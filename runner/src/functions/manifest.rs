//! `functions.json`: what `cargo uk functions build` made, for the gateway.
//!
//! **This is the contract between the build and the gateway (`cargo uk serve`)**: the
//! build writes it to `<target>/uk-functions/functions.json` after every image is built,
//! and the gateway reads nothing else to know the routes, images and limits. Change a field
//! only with both sides. Each image also carries the same facts in its function note
//! (`unikernel_abi::function::NOTE_TYPE`), from which the build fills this file.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use unikernel_abi::function::note_fields;

use crate::{Error, Result};

/// The manifest's file name, in `<target>/uk-functions/`.
pub const FILE_NAME: &str = "functions.json";

/// Every function of one crate, by function name (the Rust function's name, unique in the
/// crate).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The crate the functions come from (its package name).
    pub package: String,
    pub functions: BTreeMap<String, Function>,
}

/// One function: its route, its image and how to serve it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Function {
    /// The route's method: `GET`, `POST`, ...
    pub method: String,
    /// The route's path, matched exactly: `/resize`.
    pub path: String,
    /// The image (absolute path).
    pub image: PathBuf,
    /// The VM's memory in MiB.
    pub memory_mib: u32,
    /// How long a request may take before the VM is stopped (504), in milliseconds.
    pub timeout_ms: u64,
    pub mode: Mode,
    /// Whether the function takes `#[unikernel::init]`'s state (the init runs before the
    /// first request: in `snapshot` mode, before the snapshot).
    pub state: bool,
    /// The request buffer in bytes: the largest request (its wire encoding) the function
    /// takes, and the largest response it gives.
    pub max_request: u64,
}

/// How the gateway serves a function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Boot the image for every request.
    Fresh,
    /// Boot once, snapshot at the first request's wait, restore a new VM per request.
    Snapshot,
    /// One VM answers the requests one after the other.
    Warm,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Fresh => "fresh",
            Mode::Snapshot => "snapshot",
            Mode::Warm => "warm",
        })
    }
}

impl Manifest {
    /// Reads a manifest the build wrote.
    pub fn read(path: &Path) -> Result<Manifest> {
        let text = std::fs::read_to_string(path)
            .map_err(|err| Error::new(format!("cannot read {}: {err}", path.display())))?;
        serde_json::from_str(&text).map_err(|err| {
            Error::new(format!(
                "{} is not a functions manifest ({err}); rebuild it with `cargo uk functions build`",
                path.display()
            ))
        })
    }

    /// Writes the manifest (pretty-printed JSON).
    pub fn write(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self).expect("a manifest serialises");
        std::fs::write(path, text + "\n")
            .map_err(|err| Error::new(format!("cannot write {}: {err}", path.display())))
    }

    /// The function of a request's method and path, with its name.
    pub fn route(&self, method: &str, path: &str) -> Option<(&str, &Function)> {
        self.functions
            .iter()
            .find(|(_, function)| function.method == method && function.path == path)
            .map(|(name, function)| (name.as_str(), function))
    }
}

impl Function {
    /// The function described by an image's function note, with its name.
    pub fn from_note(desc: &[u8], image: PathBuf) -> Result<(String, Function), String> {
        let fields: BTreeMap<&str, &str> = note_fields(desc).collect();
        let text = |key: &str| {
            fields
                .get(key)
                .map(|value| value.to_string())
                .ok_or_else(|| format!("its function note has no `{key}`"))
        };
        let number = |key: &str| -> Result<u64, String> {
            text(key)?
                .parse()
                .map_err(|_| format!("its function note's `{key}` is not a number"))
        };
        let mode = match text("mode")?.as_str() {
            "fresh" => Mode::Fresh,
            "snapshot" => Mode::Snapshot,
            "warm" => Mode::Warm,
            other => return Err(format!("its function note names an unknown mode `{other}`")),
        };
        let function = Function {
            method: text("method")?,
            path: text("path")?,
            image,
            memory_mib: u32::try_from(number("memory_mib")?)
                .map_err(|_| "its function note's memory is too large".to_string())?,
            timeout_ms: number("timeout_ms")?,
            mode,
            state: number("state")? == 1,
            max_request: number("max_request")?,
        };
        Ok((text("name")?, function))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOTE: &[u8] = b"name=resize\nmethod=POST\npath=/resize\nmode=warm\ntimeout_ms=100\nmax_request=1048576\nmemory_mib=17\nstate=1\n\0\0";

    #[test]
    fn a_note_reads_as_a_function() {
        let (name, function) = Function::from_note(NOTE, "/t/resize.elf".into()).unwrap();
        assert_eq!(name, "resize");
        assert_eq!(
            function,
            Function {
                method: "POST".into(),
                path: "/resize".into(),
                image: "/t/resize.elf".into(),
                memory_mib: 17,
                timeout_ms: 100,
                mode: Mode::Warm,
                state: true,
                max_request: 1 << 20,
            }
        );
        let broken = String::from_utf8_lossy(NOTE).replace("mode=warm", "mode=cold");
        assert!(Function::from_note(broken.as_bytes(), "x".into()).is_err());
        let missing = String::from_utf8_lossy(NOTE).replace("path=/resize\n", "");
        assert_eq!(
            Function::from_note(missing.as_bytes(), "x".into()).unwrap_err(),
            "its function note has no `path`"
        );
    }

    #[test]
    fn the_manifest_round_trips_through_its_json_and_routes() {
        let (name, function) = Function::from_note(NOTE, "/t/resize.elf".into()).unwrap();
        let manifest = Manifest {
            package: "functions".into(),
            functions: BTreeMap::from([(name, function)]),
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        manifest.write(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("\"mode\": \"warm\""), "{text}");
        assert_eq!(Manifest::read(&path).unwrap(), manifest);
        assert_eq!(manifest.route("POST", "/resize").unwrap().0, "resize");
        assert!(manifest.route("GET", "/resize").is_none());
    }
}
