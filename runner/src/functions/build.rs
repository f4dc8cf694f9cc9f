//! `cargo uk functions build [path]`: one image per `#[unikernel::function]` of a crate.
//!
//! The crate is a library (`src/lib.rs`, `#![no_std]` and `#![no_main]`). For each
//! function the build compiles it once more as a binary (`cargo rustc --lib --crate-type
//! bin`), with `UNIKERNEL_FUNCTION=<name>` set so that only that function's attribute
//! expands into an entry (boot, allocator, manifest, function note): the image holds that
//! function, its subsystems and what they use; the other functions are dead code the
//! linker drops. The dependencies are compiled once, in the crate's own target directory;
//! each image costs one compile of the crate itself (and its link-time optimisation).
//! `--cfg unikernel_function="<name>"` goes to rustc too, only so that cargo sees each
//! image's build as a different one (the variable alone would not make it rebuild).
//!
//! The functions are found in the crate's sources (every `.rs` file under the library's
//! folder, parsed with `syn`): `fn`s with `#[unikernel::function(..)]` (or `#[function(..)]`
//! where it is imported). What each image is, route and limits, is read back from the
//! function note the macro put in it, and written to `<target>/uk-functions/functions.json`
//! ([`super::manifest`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use cargo_metadata::{Message, MetadataCommand};
use object::read::elf::{ElfFile64, FileHeader, ProgramHeader, SectionHeader};
use object::{Endianness, elf};

use super::manifest::{self, Function, Manifest};
use crate::setup::TARGET;
use crate::{Error, Result};

/// The folder under the crate's target directory that holds the images and the manifest.
pub const OUTPUT_DIR: &str = "uk-functions";

/// The environment variable that selects the function a build makes the image of (read by
/// `#[unikernel::function]` when it expands: `SELECT_VARIABLE` in macros/src/function.rs,
/// which must name the same).
pub const SELECT_VARIABLE: &str = "UNIKERNEL_FUNCTION";

/// What a build made.
#[derive(Debug, Clone)]
pub struct Built {
    /// Where the manifest was written.
    pub manifest_path: PathBuf,
    pub manifest: Manifest,
}

/// The library target of the crate at `path` (a folder or its Cargo.toml).
#[derive(Debug, Clone)]
struct Crate {
    package: String,
    manifest: PathBuf,
    /// The library's root file (`src/lib.rs`).
    lib: PathBuf,
    target_dir: PathBuf,
}

fn find_crate(path: &Path) -> Result<Crate> {
    let manifest = if path.is_dir() {
        path.join("Cargo.toml")
    } else {
        path.to_path_buf()
    };
    let manifest = std::path::absolute(&manifest).unwrap_or(manifest);
    if !manifest.is_file() {
        return Err(Error::new(format!(
            "{} has no Cargo.toml: give the folder of a crate of functions",
            path.display()
        )));
    }
    let metadata = MetadataCommand::new()
        .manifest_path(&manifest)
        .no_deps()
        .exec()
        .map_err(|err| Error::new(format!("cannot read {}: {err}", manifest.display())))?;
    let package = metadata
        .packages
        .iter()
        .find(|package| package.manifest_path.as_std_path() == manifest)
        .ok_or_else(|| {
            Error::new(format!(
                "{} is a workspace, not a crate of functions: give the crate's folder",
                manifest.display()
            ))
        })?;
    let lib = package
        .targets
        .iter()
        .find(|target| target.is_lib())
        .ok_or_else(|| {
            Error::new(format!(
                "`{}` has no library: a crate of functions is a library (`src/lib.rs`, with `#![no_std]` and `#![no_main]`)",
                package.name
            ))
        })?;
    Ok(Crate {
        package: package.name.to_string(),
        manifest,
        lib: lib.src_path.clone().into_std_path_buf(),
        target_dir: metadata.target_directory.into_std_path_buf(),
    })
}

/// Builds one image per function of the crate at `path` and writes its manifest.
/// `progress` gets one line per function built.
pub fn build(path: &Path, quiet: bool, progress: &mut dyn FnMut(&str)) -> Result<Built> {
    let krate = find_crate(path)?;
    let sources = krate.lib.parent().unwrap_or(Path::new("."));
    let names = find_functions(sources)?;
    if names.is_empty() {
        return Err(Error::new(format!(
            "`{}` has no `#[unikernel::function]` (looked in {})",
            krate.package,
            sources.display()
        )));
    }
    let output = krate.target_dir.join(OUTPUT_DIR);
    std::fs::create_dir_all(&output)
        .map_err(|err| Error::new(format!("cannot create {}: {err}", output.display())))?;
    let mut functions = BTreeMap::new();
    for name in &names {
        let built = build_one(&krate, name, quiet)?;
        let image = output.join(format!("{name}.elf"));
        std::fs::copy(&built, &image).map_err(|err| {
            Error::new(format!(
                "cannot copy {} to {}: {err}",
                built.display(),
                image.display()
            ))
        })?;
        let desc = function_note(&image)?.ok_or_else(|| {
            Error::new(format!(
                "the image of `{name}` has no function note: is `{name}` a `#[unikernel::function]`?"
            ))
        })?;
        let (noted, function) = Function::from_note(&desc, image.clone())
            .map_err(|reason| Error::new(format!("the image of `{name}`: {reason}")))?;
        if noted != *name {
            return Err(Error::new(format!(
                "the image built for `{name}` is `{noted}`'s"
            )));
        }
        progress(&format!(
            "{name}: {} {} -> {} ({} bytes, {} MiB, {} ms, {})",
            function.method,
            function.path,
            image.display(),
            std::fs::metadata(&image).map_or(0, |meta| meta.len()),
            function.memory_mib,
            function.timeout_ms,
            function.mode
        ));
        functions.insert(name.clone(), function);
    }
    let manifest = Manifest {
        package: krate.package.clone(),
        functions,
    };
    let manifest_path = output.join(manifest::FILE_NAME);
    manifest.write(&manifest_path)?;
    Ok(Built {
        manifest_path,
        manifest,
    })
}

/// `cargo rustc --lib --crate-type bin` of the crate with `name` selected; the binary.
fn build_one(krate: &Crate, name: &str, quiet: bool) -> Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let dir = krate.manifest.parent().unwrap_or(Path::new("."));
    let mut command = Command::new(cargo);
    command
        .args(["rustc", "--manifest-path"])
        .arg(&krate.manifest)
        .args([
            "--lib",
            "--crate-type",
            "bin",
            "--release",
            "--target",
            TARGET,
            "--message-format=json-render-diagnostics",
        ])
        .args(quiet.then_some("-q"))
        .args(["--", "--cfg", &format!("unikernel_function=\"{name}\"")])
        .env(SELECT_VARIABLE, name)
        // Runs in the crate's folder, so that its `.cargo/config.toml` (the linker script,
        // the runner) applies as for `cargo build` there.
        .current_dir(dir)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit());
    let out = command
        .output()
        .map_err(|err| Error::new(format!("cannot run cargo: {err}")))?;
    if !out.status.success() {
        return Err(Error::new(format!(
            "building the image of `{name}` failed (cargo's messages are above)"
        )));
    }
    Message::parse_stream(&out.stdout[..])
        .filter_map(|message| match message.ok()? {
            Message::CompilerArtifact(artifact)
                if artifact.target.src_path.as_std_path() == krate.lib =>
            {
                artifact.filenames.into_iter().next()
            }
            _ => None,
        })
        .last()
        .map(|path| path.into_std_path_buf())
        .ok_or_else(|| Error::new(format!("cargo reported no image for `{name}`")))
}

/// The names of the `#[unikernel::function]`s in the `.rs` files under `dir`, sorted.
pub fn find_functions(dir: &Path) -> Result<Vec<String>> {
    let mut names = Vec::new();
    let mut folders = vec![dir.to_path_buf()];
    while let Some(folder) = folders.pop() {
        let entries = std::fs::read_dir(&folder)
            .map_err(|err| Error::new(format!("cannot read {}: {err}", folder.display())))?;
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                folders.push(path);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                let text = std::fs::read_to_string(&path)
                    .map_err(|err| Error::new(format!("cannot read {}: {err}", path.display())))?;
                // A file that does not parse is the compiler's to report.
                if let Ok(file) = syn::parse_file(&text) {
                    collect_functions(&file.items, &mut names);
                }
            }
        }
    }
    names.sort();
    names.dedup();
    Ok(names)
}

fn collect_functions(items: &[syn::Item], names: &mut Vec<String>) {
    for item in items {
        match item {
            syn::Item::Fn(function) if function.attrs.iter().any(is_function_attr) => {
                names.push(function.sig.ident.to_string());
            }
            syn::Item::Mod(module) => {
                if let Some((_, items)) = &module.content {
                    collect_functions(items, names);
                }
            }
            _ => {}
        }
    }
}

/// `#[unikernel::function(..)]`, or `#[function(..)]` (imported).
fn is_function_attr(attr: &syn::Attribute) -> bool {
    let segments: Vec<String> = attr
        .path()
        .segments
        .iter()
        .map(|segment| segment.ident.to_string())
        .collect();
    matches!(
        segments.iter().map(String::as_str).collect::<Vec<_>>()[..],
        ["unikernel", "function"] | ["function"]
    )
}

/// The description of the image's function note, if it has one.
pub fn function_note(image: &Path) -> Result<Option<Vec<u8>>> {
    let bytes = std::fs::read(image)
        .map_err(|err| Error::new(format!("cannot read {}: {err}", image.display())))?;
    let file = ElfFile64::<Endianness>::parse(&*bytes)
        .map_err(|err| Error::new(format!("{} is not an ELF image: {err}", image.display())))?;
    let endian = file.endian();
    let header = file.elf_header();
    let owner = unikernel_abi::manifest::NAME.as_bytes();
    let kind = unikernel_abi::function::NOTE_TYPE;
    let mut found = None;
    let mut look =
        |notes: Option<object::read::elf::NoteIterator<'_, elf::FileHeader64<Endianness>>>| {
            let Some(mut notes) = notes else { return };
            while let Ok(Some(note)) = notes.next() {
                if note.name() == owner && note.n_type(endian) == kind {
                    found = Some(note.desc().to_vec());
                }
            }
        };
    if let Ok(segments) = header.program_headers(endian, &*bytes) {
        for segment in segments {
            look(segment.notes(endian, &*bytes).ok().flatten());
        }
    }
    if let Ok(sections) = header.sections(endian, &*bytes) {
        for section in sections.iter() {
            look(section.notes(endian, &*bytes).ok().flatten());
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn functions_are_found_in_every_file_and_inline_module() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("nested")).unwrap();
        std::fs::write(
            dir.path().join("lib.rs"),
            r#"
            mod nested;
            #[unikernel::function(route = "GET /a")]
            fn alpha(_: Request) -> Response { todo!() }
            mod inline {
                use unikernel::function;
                #[function(route = "GET /b")]
                pub(crate) fn beta(_: Request) -> Response { todo!() }
            }
            #[unikernel::init]
            fn init() -> State { State }
            #[other::function]
            fn not_ours() {}
            "#,
        )
        .unwrap();
        std::fs::write(
            dir.path().join("nested/mod.rs"),
            r#"#[unikernel::function(route = "POST /c")] fn gamma(_: Request) -> Response { todo!() }"#,
        )
        .unwrap();
        std::fs::write(dir.path().join("broken.rs"), "fn (").unwrap();
        assert_eq!(
            find_functions(dir.path()).unwrap(),
            ["alpha", "beta", "gamma"]
        );
    }
}
