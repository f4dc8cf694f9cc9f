//! The image holds exactly what the app declared: no symbol of a subsystem crate the app
//! did not declare is linked in. The list of subsystem crates is read from `libs/`, so the
//! test covers every subsystem as it lands.

use std::collections::BTreeSet;
use std::path::Path;

/// The crate names (`unikernel_console`, ...) of every subsystem in `libs/`.
fn subsystem_crates() -> BTreeSet<String> {
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
            Some(name)
        })
        .collect()
}

/// The names in an ELF64 file's symbol table.
fn symbols(elf: &Path) -> Vec<String> {
    let bytes = std::fs::read(elf).unwrap();
    runner::elf::symbol_names(&bytes).expect("the example is built with its symbol table")
}

/// Asserts that `example` links no subsystem crate outside `declared`. (A declared one
/// may show no symbol of its own: LTO can inline a small subsystem into the boot code.)
fn assert_links_only(example: &str, declared: &[&str]) {
    let elf = runner::build_example(example).unwrap_or_else(|err| panic!("{err}"));
    let symbols = symbols(&elf);
    assert!(
        symbols
            .iter()
            .any(|symbol| symbol.contains("unikernel_arch")),
        "the symbol table of {example} was not read: no kernel symbol in it"
    );
    let crates = subsystem_crates();
    assert!(
        crates.contains("unikernel_console"),
        "libs/ was not read: {crates:?}"
    );
    for krate in crates
        .iter()
        .filter(|krate| !declared.contains(&krate.as_str()))
    {
        let linked: Vec<&String> = symbols
            .iter()
            .filter(|symbol| symbol.contains(krate.as_str()))
            .collect();
        assert!(
            linked.is_empty(),
            "{example} does not declare {krate} but links {linked:?}"
        );
    }
}

#[test]
fn empty_links_no_subsystem() {
    assert_links_only("empty", &[]);
    let elf = runner::build_example("empty").unwrap();
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

#[test]
fn hello_links_console_and_heap_only() {
    assert_links_only("hello", &["unikernel_console", "unikernel_heap"]);
}

#[test]
fn faults_links_console_heap_and_args() {
    assert_links_only(
        "faults",
        &["unikernel_console", "unikernel_heap", "unikernel_args"],
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
