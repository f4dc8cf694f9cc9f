//! The image holds exactly what the app declared: no symbol of a subsystem crate is linked
//! in unless the image's manifest note (the subsystems it starts, written by
//! `#[unikernel]`) names its subsystem. Subsystem `<name>` is the crate `unikernel_<name>`
//! in `libs/<name>/`; the subsystems, their crates and the examples are all read, not
//! listed here, so a new subsystem or example needs no change to this file.

use std::collections::BTreeSet;
use std::path::Path;

/// The crates of `libs/`, by crate name (`unikernel_console`, ...), with their manifests.
fn lib_crates() -> Vec<(String, String)> {
    let libs = runner::repo_root().join("libs");
    std::fs::read_dir(&libs)
        .expect("libs/ exists")
        .filter_map(|entry| {
            let manifest = std::fs::read_to_string(entry.ok()?.path().join("Cargo.toml")).ok()?;
            let name = manifest
                .lines()
                .find_map(|line| line.trim().strip_prefix("name = "))?
                .trim_matches('"')
                .replace('-', "_");
            Some((name, manifest))
        })
        .collect()
}

/// Whether a `libs/` crate is driver glue shared by subsystems (`libs/virtio`), not a
/// subsystem: its manifest says `driver-glue = true`.
fn is_driver_glue(manifest: &str) -> bool {
    manifest
        .lines()
        .any(|line| line.trim() == "driver-glue = true")
}

/// The crate names (`unikernel_console`, ...) of every subsystem in `libs/`.
fn subsystem_crates() -> BTreeSet<String> {
    let crates: BTreeSet<String> = lib_crates()
        .into_iter()
        .filter(|(_, manifest)| !is_driver_glue(manifest))
        .map(|(name, _)| name)
        .collect();
    assert!(
        crates.contains("unikernel_console"),
        "libs/ was not read: {crates:?}"
    );
    crates
}

/// The crate of subsystem `name`.
fn crate_of(subsystem: &str) -> String {
    format!("unikernel_{subsystem}")
}

/// Every example, by folder name.
fn examples() -> Vec<String> {
    let examples = runner::repo_root().join("examples");
    let mut names: Vec<String> = std::fs::read_dir(&examples)
        .expect("examples/ exists")
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            path.join("Cargo.toml").is_file().then_some(())?;
            // A crate of functions is a library: `cargo uk functions build` makes its images,
            // and tests/functions.rs checks what each holds.
            path.join("src/main.rs").is_file().then_some(())?;
            // The floor kernel is the boot-time reference, not a #[unikernel] app.
            (path.file_name()? != "floor").then_some(())?;
            Some(path.file_name()?.to_str()?.to_owned())
        })
        .collect();
    names.sort();
    names
}

/// The names in an ELF64 file's symbol table.
fn symbols(elf: &Path) -> Vec<String> {
    let bytes = std::fs::read(elf).unwrap();
    runner::elf::symbol_names(&bytes).expect("the example is built with its symbol table")
}

/// The subsystems `example` starts, from its manifest note.
fn started(elf: &Path) -> Vec<String> {
    runner::elf::validate(elf)
        .unwrap()
        .subsystems
        .expect("every example has a manifest note")
}

/// Asserts that `example` links no subsystem crate its manifest does not name, and that
/// every subsystem it names has its crate in `libs/`. (A started one may show no symbol of
/// its own: LTO can inline a small subsystem into the boot code.)
fn assert_links_only_what_it_starts(example: &str, crates: &BTreeSet<String>) {
    let elf = runner::build_example(example).unwrap_or_else(|err| panic!("{err}"));
    let symbols = symbols(&elf);
    assert!(
        symbols
            .iter()
            .any(|symbol| symbol.contains("unikernel_arch")),
        "the symbol table of {example} was not read: no kernel symbol in it"
    );
    let started: Vec<String> = started(&elf).iter().map(|name| crate_of(name)).collect();
    for krate in &started {
        assert!(
            crates.contains(krate),
            "{example} starts a subsystem without a crate in libs/: {krate}"
        );
    }
    for krate in crates.iter().filter(|krate| !started.contains(krate)) {
        let linked: Vec<&String> = symbols
            .iter()
            .filter(|symbol| symbol.contains(krate.as_str()))
            .collect();
        assert!(
            linked.is_empty(),
            "{example} does not start {krate} but links {linked:?}"
        );
    }
}

#[test]
fn every_example_links_only_the_subsystems_it_starts() {
    let crates = subsystem_crates();
    let examples = examples();
    assert!(examples.contains(&"hello".to_owned()), "{examples:?}");
    for example in &examples {
        assert_links_only_what_it_starts(example, &crates);
    }
}

/// A driver-glue crate is linked only into images that start a subsystem depending on it
/// (hello, with no device, links none of libs/virtio).
#[test]
fn driver_glue_is_linked_only_through_a_subsystem_that_uses_it() {
    let crates = lib_crates();
    let glue: Vec<&String> = crates
        .iter()
        .filter(|(_, manifest)| is_driver_glue(manifest))
        .map(|(name, _)| name)
        .collect();
    assert!(glue.contains(&&"unikernel_virtio".to_owned()), "{glue:?}");
    for example in examples() {
        let elf = runner::build_example(&example).unwrap_or_else(|err| panic!("{err}"));
        let started: Vec<String> = started(&elf).iter().map(|name| crate_of(name)).collect();
        let symbols = symbols(&elf);
        for krate in &glue {
            let dependency = krate.replace('_', "-") + ".workspace = true";
            let used = crates.iter().any(|(name, manifest)| {
                started.contains(name) && manifest.lines().any(|l| l.trim() == dependency)
            });
            let linked: Vec<&String> = symbols
                .iter()
                .filter(|symbol| symbol.contains(krate.as_str()))
                .collect();
            assert!(
                used || linked.is_empty(),
                "{example} starts no subsystem using {krate} but links {linked:?}"
            );
        }
        if example == "hello" {
            assert!(symbols.iter().all(|s| !s.contains("unikernel_virtio")));
        }
    }
}

#[test]
fn empty_links_no_allocator() {
    let elf = runner::build_example("empty").unwrap();
    assert_eq!(started(&elf), Vec::<String>::new());
    let symbols = symbols(&elf);
    let allocator: Vec<&String> = symbols
        .iter()
        .filter(|symbol| symbol.contains("linked_list_allocator"))
        .collect();
    assert!(
        allocator.is_empty(),
        "empty links the heap's allocator: {allocator:?}"
    );
}

/// The manifest note lists the subsystems an image starts, in boot order, for the VMM.
#[test]
fn the_manifest_lists_the_started_subsystems() {
    let subsystems = |example: &str| {
        let elf = runner::build_example(example).unwrap_or_else(|err| panic!("{err}"));
        runner::elf::validate(&elf).unwrap().subsystems
    };
    assert_eq!(subsystems("empty"), Some(vec![]));
    assert_eq!(
        subsystems("hello"),
        Some(vec!["console".to_string(), "heap".to_string()])
    );
    assert_eq!(
        subsystems("faults").unwrap(),
        ["console", "heap", "args"].map(String::from).to_vec()
    );
    let floor = runner::elf::validate(&runner::floor_elf()).unwrap();
    assert_eq!(floor.subsystems, None, "the floor kernel has no manifest");
    assert!(!floor.declares("irq"));
}
