//! `cargo uk size <app>`: where the bytes of an image go, as cargo-bloat shows it for host
//! programs: per section (text, rodata, data, bss), per crate, per declared subsystem, and
//! the largest functions.
//!
//! Every byte of every loaded section is counted once: the symbols of the ELF's symbol
//! table (aliases and overlaps clipped) go to the crate their demangled name starts with
//! (`<T as Trait>::f` to `T`'s crate), or, for unmangled names (`memcpy`,
//! `__unikernel_boot`), to the crate of the source file the debug info names; bytes no
//! symbol covers (string literals, alignment, assembly) are `[unattributed]`. So the
//! per-crate columns add up to the section sizes exactly.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use object::{Object, ObjectSection, ObjectSymbol, SectionFlags, SectionKind, SymbolKind};

use crate::error::{Error, Result};

/// The four kinds of bytes in an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// Code (`.text`).
    Text,
    /// Read-only data, notes included.
    Rodata,
    /// Initialised writable data: in the file and in memory.
    Data,
    /// Zeroed writable data: in memory only.
    Bss,
}

/// Bytes of each kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sizes {
    pub text: u64,
    pub rodata: u64,
    pub data: u64,
    pub bss: u64,
}

impl Sizes {
    fn add(&mut self, kind: Kind, bytes: u64) {
        *match kind {
            Kind::Text => &mut self.text,
            Kind::Rodata => &mut self.rodata,
            Kind::Data => &mut self.data,
            Kind::Bss => &mut self.bss,
        } += bytes;
    }

    fn add_all(&mut self, other: Sizes) {
        self.text += other.text;
        self.rodata += other.rodata;
        self.data += other.data;
        self.bss += other.bss;
    }

    /// What the image file holds of these bytes (bss takes no room in it).
    pub fn in_file(&self) -> u64 {
        self.text + self.rodata + self.data
    }
}

/// One loaded section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub name: String,
    pub kind: Kind,
    pub size: u64,
}

/// One function or static.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub name: String,
    pub krate: String,
    pub kind: Kind,
    pub size: u64,
}

/// Where the bytes of one image go.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub sections: Vec<Section>,
    /// Bytes per crate, `[unattributed]` included; the columns add up to the sections.
    pub crates: BTreeMap<String, Sizes>,
    /// Every sized symbol after clipping, largest first.
    pub items: Vec<Item>,
    /// The subsystems the image's manifest note lists, in boot order.
    pub subsystems: Vec<String>,
}

/// The name of the bytes no symbol covers.
pub const UNATTRIBUTED: &str = "[unattributed]";

impl Report {
    /// The sections' total per kind.
    pub fn section_totals(&self) -> Sizes {
        let mut total = Sizes::default();
        for section in &self.sections {
            total.add(section.kind, section.size);
        }
        total
    }

    /// The crates' total per kind (equal to [`Report::section_totals`]).
    pub fn crate_totals(&self) -> Sizes {
        let mut total = Sizes::default();
        for sizes in self.crates.values() {
            total.add_all(*sizes);
        }
        total
    }

    /// What each declared subsystem costs (its crate, the crates only it links and the
    /// facade's `init_<subsystem>`), then
    /// what every image has (boot, CPU, exit: `unikernel_arch` and the facade), the app's
    /// own crate, the libraries all of them share (`core`, `alloc`, ...), and the rest.
    pub fn groups(&self, app: &str) -> Vec<(String, Vec<String>, Sizes)> {
        let mut owner: HashMap<String, String> = HashMap::new();
        for subsystem in &self.subsystems {
            owner.insert(format!("unikernel_{subsystem}"), subsystem.clone());
            for krate in exclusive_crates(subsystem) {
                owner.insert(krate.to_string(), subsystem.clone());
            }
        }
        let group_of = |krate: &str| -> String {
            if let Some(subsystem) = owner.get(krate) {
                return subsystem.clone();
            }
            match krate {
                "unikernel_arch" | "unikernel" | "unikernel_abi" | "x86_64" | "spin" => {
                    ALWAYS.into()
                }
                "core" | "alloc" | "compiler_builtins" | "log" | "rustc_demangle" => SHARED.into(),
                UNATTRIBUTED => UNATTRIBUTED.into(),
                k if k == app.replace('-', "_") => format!("the app ({k})"),
                _ => OTHER.into(),
            }
        };
        let mut order: Vec<String> = self.subsystems.clone();
        order.extend([
            ALWAYS.into(),
            format!("the app ({})", app.replace('-', "_")),
        ]);
        order.extend([SHARED.into(), OTHER.into(), UNATTRIBUTED.into()]);
        let mut groups: Vec<(String, Vec<String>, Sizes)> = order
            .into_iter()
            .map(|name| (name, Vec::new(), Sizes::default()))
            .collect();
        // The facade's init function of a subsystem (`unikernel::__private::init_heap`) is
        // part of what that subsystem costs.
        let facade_init = |item: &Item| {
            (item.krate == "unikernel")
                .then(|| {
                    self.subsystems
                        .iter()
                        .find(|s| item.name.ends_with(&format!("::init_{s}")))
                })
                .flatten()
        };
        let mut add = |group: &str, krate: &str, sizes: Sizes| {
            if let Some(entry) = groups.iter_mut().find(|(name, ..)| name == group) {
                if !entry.1.iter().any(|k| k == krate) {
                    entry.1.push(krate.to_string());
                }
                entry.2.add_all(sizes);
            }
        };
        for item in self.items.iter().filter(|item| item.krate != UNATTRIBUTED) {
            let mut sizes = Sizes::default();
            sizes.add(item.kind, item.size);
            let group = facade_init(item)
                .cloned()
                .unwrap_or_else(|| group_of(&item.krate));
            add(&group, &item.krate, sizes);
        }
        if let Some(&unattributed) = self.crates.get(UNATTRIBUTED) {
            add(UNATTRIBUTED, UNATTRIBUTED, unattributed);
        }
        for (_, crates, _) in &mut groups {
            crates.sort();
        }
        groups
    }
}

const ALWAYS: &str = "always there (boot, CPU, exit)";
const SHARED: &str = "shared (core, alloc, log: fmt and the like)";
const OTHER: &str = "other crates";

/// The third-party crates a subsystem alone brings in (see each `libs/<name>/Cargo.toml`).
fn exclusive_crates(subsystem: &str) -> &'static [&'static str] {
    match subsystem {
        "heap" => &["linked_list_allocator"],
        "net" => &[
            "smoltcp",
            "virtio_drivers",
            "managed",
            "heapless",
            "zerocopy",
            "bitflags",
            "hash32",
            "byteorder",
        ],
        _ => &[],
    }
}

/// Reads an image and counts its bytes.
pub fn analyze(elf: &Path) -> Result<Report> {
    let bytes = std::fs::read(elf)
        .map_err(|err| Error::new(format!("cannot read {}: {err}", elf.display())))?;
    let file = object::File::parse(&*bytes)
        .map_err(|err| Error::new(format!("{} is not an ELF file: {err}", elf.display())))?;
    let debug_info = addr2line::Loader::new(elf).ok();
    let mut crates_of_files = CrateOfFile::default();
    let mut report = Report {
        subsystems: crate::elf::inspect(&bytes)
            .ok()
            .and_then(|info| info.subsystems)
            .unwrap_or_default(),
        ..Report::default()
    };

    let mut sections = Vec::new();
    for section in file.sections() {
        let alloc = match section.flags() {
            SectionFlags::Elf { sh_flags } => sh_flags & u64::from(object::elf::SHF_ALLOC) != 0,
            _ => false,
        };
        if !alloc || section.size() == 0 {
            continue;
        }
        let name = section.name().unwrap_or("?").to_string();
        let kind = section_kind(&name, section.kind());
        sections.push((section.index(), section.address(), section.size(), kind));
        report.sections.push(Section {
            name,
            kind,
            size: section.size(),
        });
    }

    for &(index, start, size, kind) in &sections {
        let mut symbols: Vec<(u64, u64, String)> = file
            .symbols()
            .filter(|symbol| symbol.section_index() == Some(index) && symbol.size() > 0)
            .filter(|symbol| !matches!(symbol.kind(), SymbolKind::Section | SymbolKind::File))
            .map(|symbol| {
                let raw = symbol.name().unwrap_or("?");
                let name = addr2line::demangle_auto(raw.into(), None).into_owned();
                (symbol.address(), symbol.size(), name)
            })
            .collect();
        symbols.sort_by_key(|&(address, size, _)| (address, std::cmp::Reverse(size)));
        let end = start + size;
        let mut covered_to = start;
        let mut attributed = 0;
        for (address, size, name) in symbols {
            let from = address.max(covered_to);
            let to = (address + size).min(end);
            if to <= from {
                continue;
            }
            let krate = crate_of_name(&name)
                .or_else(|| {
                    let location = debug_info.as_ref()?.find_location(address).ok()??;
                    crates_of_files.crate_of(location.file?)
                })
                .unwrap_or_else(|| UNATTRIBUTED.to_string());
            report
                .crates
                .entry(krate.clone())
                .or_default()
                .add(kind, to - from);
            report.items.push(Item {
                name,
                krate,
                kind,
                size: to - from,
            });
            attributed += to - from;
            covered_to = to;
        }
        report
            .crates
            .entry(UNATTRIBUTED.to_string())
            .or_default()
            .add(kind, size - attributed);
    }
    report
        .items
        .sort_by(|a, b| b.size.cmp(&a.size).then_with(|| a.name.cmp(&b.name)));
    Ok(report)
}

fn section_kind(name: &str, kind: SectionKind) -> Kind {
    if name.starts_with(".text") {
        Kind::Text
    } else if name.starts_with(".rodata") || name.starts_with(".note") {
        Kind::Rodata
    } else if name.starts_with(".bss") || kind == SectionKind::UninitializedData {
        Kind::Bss
    } else if name.starts_with(".data") || kind == SectionKind::Data {
        Kind::Data
    } else if kind == SectionKind::Text {
        Kind::Text
    } else {
        Kind::Rodata
    }
}

/// The crate a demangled Rust name belongs to: its first path segment, and for
/// `<T as Trait>::f` (or `<T>::f`) the first segment of `T`.
pub fn crate_of_name(name: &str) -> Option<String> {
    let mut rest = name;
    loop {
        let trimmed = rest
            .trim_start_matches(['<', '&', '*', '(', '['])
            .trim_start_matches("mut ")
            .trim_start_matches("const ")
            .trim_start_matches("dyn ");
        if trimmed.len() == rest.len() {
            break;
        }
        rest = trimmed;
    }
    let (first, _) = rest.split_once("::")?;
    // `__rustc::` holds the symbols rustc itself names (the panic handler's entry).
    let valid = first != "__rustc"
        && !first.is_empty()
        && first.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    valid.then(|| first.to_string())
}

/// The crate of a source file: the standard library's by its folder under `library/`, a
/// registry crate's by its folder name without the version, any other by the nearest
/// `Cargo.toml`'s package name.
#[derive(Default)]
struct CrateOfFile {
    manifests: HashMap<PathBuf, Option<String>>,
}

impl CrateOfFile {
    fn crate_of(&mut self, file: &str) -> Option<String> {
        if let Some((_, rest)) = file.split_once("/library/") {
            return rest.split('/').next().map(|name| name.replace('-', "_"));
        }
        if let Some((_, rest)) = file.split_once("/registry/src/") {
            let folder = rest.split('/').nth(1)?;
            let name = match folder.rsplit_once('-') {
                Some((name, version)) if version.starts_with(|c: char| c.is_ascii_digit()) => name,
                _ => folder,
            };
            return Some(name.replace('-', "_"));
        }
        let mut dir = Path::new(file).parent();
        while let Some(folder) = dir {
            if let Some(known) = self.manifests.get(folder) {
                return known.clone();
            }
            let manifest = folder.join("Cargo.toml");
            if manifest.is_file() {
                let name = std::fs::read_to_string(&manifest).ok().and_then(|text| {
                    text.lines()
                        .find_map(|line| line.trim().strip_prefix("name = "))
                        .map(|name| name.trim_matches('"').replace('-', "_"))
                });
                self.manifests.insert(folder.to_path_buf(), name.clone());
                return name;
            }
            dir = folder.parent();
        }
        None
    }
}

/// The report as a person reads it: `top` largest functions and statics.
pub fn render(report: &Report, app: &str, stripped: Option<u64>, top: usize) -> String {
    let mut out = String::new();
    let totals = report.section_totals();
    let _ = write!(out, "{app}: ");
    if let Some(stripped) = stripped {
        let _ = write!(out, "{} bytes stripped; ", grouped(stripped));
    }
    let sections: Vec<String> = report
        .sections
        .iter()
        .map(|s| format!("{} {}", s.name, grouped(s.size)))
        .collect();
    let _ = writeln!(out, "sections: {}", sections.join(", "));
    let _ = writeln!(
        out,
        "declared subsystems: {}",
        if report.subsystems.is_empty() {
            "none".to_string()
        } else {
            report.subsystems.join(", ")
        }
    );

    let header = |out: &mut String, title: &str| {
        let _ = writeln!(
            out,
            "\n{title:<44} {:>8} {:>8} {:>8} {:>8} {:>8}",
            "text", "rodata", "data", "bss", "file"
        );
    };
    let row = |out: &mut String, name: &str, sizes: &Sizes| {
        let _ = writeln!(
            out,
            "  {name:<42} {:>8} {:>8} {:>8} {:>8} {:>8}",
            grouped(sizes.text),
            grouped(sizes.rodata),
            grouped(sizes.data),
            grouped(sizes.bss),
            grouped(sizes.in_file())
        );
    };

    header(&mut out, "by subsystem (and what it links)");
    for (name, crates, sizes) in report.groups(app) {
        if crates.is_empty() && !report.subsystems.contains(&name) {
            continue;
        }
        row(&mut out, &name, &sizes);
        if !crates.is_empty() && name != UNATTRIBUTED {
            let _ = writeln!(out, "      {}", crates.join(", "));
        }
    }

    header(&mut out, "by crate");
    let mut crates: Vec<(&String, &Sizes)> = report.crates.iter().collect();
    crates.sort_by(|a, b| {
        (b.1.in_file(), b.1.bss)
            .cmp(&(a.1.in_file(), a.1.bss))
            .then_with(|| a.0.cmp(b.0))
    });
    for (name, sizes) in crates {
        row(&mut out, name, sizes);
    }
    row(&mut out, "(total: the sections' sizes)", &totals);

    let _ = writeln!(out, "\nlargest functions and statics in the file:");
    for item in report
        .items
        .iter()
        .filter(|item| item.kind != Kind::Bss)
        .take(top)
    {
        let kind = match item.kind {
            Kind::Text => "text",
            Kind::Rodata => "rodata",
            Kind::Data => "data",
            Kind::Bss => "bss",
        };
        let _ = writeln!(
            out,
            "  {:>7} {kind:<6} {} [{}]",
            grouped(item.size),
            item.name,
            item.krate
        );
    }
    out
}

/// `1103` as `1,103` (also the timeline's instruction counts).
pub(crate) fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crates_come_from_the_first_path_segment_of_the_type() {
        let cases = [
            ("core::fmt::write", Some("core")),
            (
                "<unikernel_console::Logger as log::Log>::log",
                Some("unikernel_console"),
            ),
            ("<&T as core::fmt::Debug>::fmt", None),
            ("<&mut smoltcp::iface::Interface>::poll", Some("smoltcp")),
            ("<[u8] as core::fmt::Debug>::fmt", None),
            ("memcpy", None),
            ("__unikernel_boot", None),
            ("hello::main", Some("hello")),
            ("__rustc::rust_begin_unwind", None),
        ];
        for (name, expected) in cases {
            assert_eq!(crate_of_name(name).as_deref(), expected, "{name}");
        }
    }

    #[test]
    fn files_name_their_crate() {
        let mut crates = CrateOfFile::default();
        assert_eq!(
            crates
                .crate_of("/rustc/17067e9/library/core/src/fmt/mod.rs")
                .as_deref(),
            Some("core")
        );
        assert_eq!(
            crates
                .crate_of("/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/linked_list_allocator-0.10.5/src/hole.rs")
                .as_deref(),
            Some("linked_list_allocator")
        );
        let own = crate::build::repo_root().join("runner/src/size.rs");
        assert_eq!(
            crates.crate_of(own.to_str().unwrap()).as_deref(),
            Some("runner")
        );
    }

    #[test]
    fn the_columns_add_up_to_the_sections_of_the_runner_itself() {
        // Any ELF with a symbol table will do; the test binary is one.
        let report = analyze(&std::env::current_exe().unwrap()).unwrap();
        assert_eq!(report.crate_totals(), report.section_totals());
        assert!(report.section_totals().text > 0);
        assert!(
            report.crates.contains_key("runner"),
            "{:?}",
            report.crates.keys()
        );
        let groups: u64 = report
            .groups("runner")
            .iter()
            .map(|(_, _, sizes)| sizes.in_file() + sizes.bss)
            .sum();
        let totals = report.section_totals();
        assert_eq!(groups, totals.in_file() + totals.bss);
    }
}
