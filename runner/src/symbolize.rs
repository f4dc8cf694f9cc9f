//! Names for the raw addresses a guest prints when it panics or faults: the
//! `backtrace: 0x... 0x...` line (return addresses, from frame pointers) and the faulting
//! `rip`, turned into `function (file:line)` lines from the ELF's debug info (`addr2line`,
//! which reads the ELF with `object`). An ELF without debug info still gets function
//! names from its symbol table; a stripped one keeps the raw addresses.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// How the guest's backtrace line starts (`core/arch/src/backtrace.rs`).
pub const BACKTRACE_PREFIX: &str = "backtrace:";
/// How the register line of an exception report starts (after its indentation).
const RIP_MARKER: &str = "rip ";

/// One source-level frame at an address: inlined functions give several per address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The demangled function name, without its hash; `None` where nothing names it.
    pub function: Option<String>,
    /// The source file, relative to the current folder where it lies below it.
    pub file: Option<String>,
    pub line: Option<u32>,
}

impl fmt::Display for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.function.as_deref().unwrap_or("??"))?;
        match (&self.file, self.line) {
            (Some(file), Some(line)) => write!(f, " ({file}:{line})"),
            (Some(file), None) => write!(f, " ({file})"),
            _ => Ok(()),
        }
    }
}

/// The debug info (or symbol table) of one ELF.
pub struct Symbolizer {
    loader: addr2line::Loader,
    relative_to: Option<PathBuf>,
    /// Every named code symbol, sized or not, by address: the assembly's labels
    /// (`long_mode_entry`) have no size and no debug info.
    labels: Vec<(u64, String)>,
}

impl fmt::Debug for Symbolizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Symbolizer").finish_non_exhaustive()
    }
}

impl Symbolizer {
    /// Reads `elf`'s debug info and symbol table.
    pub fn open(elf: &Path) -> Result<Self> {
        let loader = addr2line::Loader::new(elf)
            .map_err(|err| Error::new(format!("cannot read {}: {err}", elf.display())))?;
        let bytes = std::fs::read(elf)
            .map_err(|err| Error::new(format!("cannot read {}: {err}", elf.display())))?;
        Ok(Symbolizer {
            loader,
            relative_to: std::env::current_dir().ok(),
            labels: code_labels(&bytes),
        })
    }

    /// The frames at `address`, innermost (inlined) first; one frame with the symbol's
    /// name where there is no line information, none where nothing is known.
    pub fn frames(&self, address: u64) -> Vec<Frame> {
        let mut frames = Vec::new();
        if let Ok(mut iter) = self.loader.find_frames(address) {
            while let Ok(Some(frame)) = iter.next() {
                let function = frame
                    .function
                    .as_ref()
                    .and_then(|name| name.demangle().ok())
                    .map(|name| name.into_owned());
                let (file, line) = match frame.location {
                    Some(location) => (location.file.map(|f| self.shorten(f)), location.line),
                    None => (None, None),
                };
                frames.push(Frame {
                    function,
                    file,
                    line,
                });
            }
        }
        let symbol = self
            .loader
            .find_symbol(address)
            .map(|name| addr2line::demangle_auto(name.into(), None).into_owned())
            .or_else(|| self.label_before(address));
        if frames.iter().all(|frame| frame.function.is_none())
            && let Some(symbol) = symbol
        {
            let function = Some(symbol);
            match frames.first_mut() {
                Some(first) => first.function = function,
                None => frames.push(Frame {
                    function,
                    file: None,
                    line: None,
                }),
            }
        }
        frames
    }

    /// `label+0x..` for the nearest label at or below `address`.
    fn label_before(&self, address: u64) -> Option<String> {
        let index = self.labels.partition_point(|(start, _)| *start <= address);
        let (start, name) = self.labels.get(index.checked_sub(1)?)?;
        Some(match address - start {
            0 => name.clone(),
            offset => format!("{name}+{offset:#x}"),
        })
    }

    /// `file` relative to the current folder, else to the repository, where it lies below.
    fn shorten(&self, file: &str) -> String {
        let path = Path::new(file);
        let repo = crate::build::repo_root();
        self.relative_to
            .as_deref()
            .and_then(|base| path.strip_prefix(base).ok())
            .or_else(|| path.strip_prefix(&repo).ok())
            .unwrap_or(path)
            .display()
            .to_string()
    }

    /// The symbolized report of every backtrace and faulting `rip` in `serial`, one
    /// numbered line per address (inlined callers indented below it); `None` when the
    /// output has neither.
    pub fn render(&self, serial: &str) -> Option<String> {
        let addresses = report_addresses(serial);
        if addresses.is_empty() {
            return None;
        }
        let mut out = String::from("backtrace (from the ELF's debug info):\n");
        let mut index = 0;
        while index < addresses.len() {
            let address = addresses[index];
            // A recursion prints one return address many times: show it once, counted.
            let repeats = addresses[index + 1..]
                .iter()
                .take_while(|&&next| next == address)
                .count();
            // A return address is the instruction after the call: look up the call.
            let (probe, raw) = match address {
                Address::Faulting(rip) => (rip, rip),
                Address::Return(ret) => (ret.saturating_sub(1), ret),
            };
            let frames = self.frames(probe);
            if frames.is_empty() {
                out.push_str(&format!("  {index:>2}: {raw:#x}\n"));
            }
            for (depth, frame) in frames.iter().enumerate() {
                if depth == 0 {
                    out.push_str(&format!("  {index:>2}: {frame}\n"));
                } else {
                    out.push_str(&format!("      inlined into {frame}\n"));
                }
            }
            if repeats > 0 {
                out.push_str(&format!(
                    "      and {repeats} more frames of the same call\n"
                ));
            }
            index += 1 + repeats;
        }
        Some(out)
    }
}

/// The named symbols in executable sections, sorted by address.
fn code_labels(elf: &[u8]) -> Vec<(u64, String)> {
    use object::{Object, ObjectSection, ObjectSymbol, SectionKind};
    let Ok(file) = object::File::parse(elf) else {
        return Vec::new();
    };
    let mut labels: Vec<(u64, String)> = file
        .symbols()
        .filter(|symbol| {
            symbol
                .section_index()
                .and_then(|index| file.section_by_index(index).ok())
                .is_some_and(|section| section.kind() == SectionKind::Text)
        })
        .filter_map(|symbol| {
            let name = symbol.name().ok().filter(|name| !name.is_empty())?;
            Some((
                symbol.address(),
                addr2line::demangle_auto(name.into(), None).into_owned(),
            ))
        })
        .collect();
    labels.sort();
    labels
}

/// Whether `serial` holds a backtrace or an exception report to symbolize.
pub fn has_report(serial: &str) -> bool {
    !report_addresses(serial).is_empty()
}

/// An address from the guest's report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Address {
    /// The instruction that faulted (the exception report's `rip 0x... rsp 0x...` line).
    Faulting(u64),
    /// A return address from the `backtrace:` line.
    Return(u64),
}

/// The faulting `rip` and the return addresses in a guest's output, in order.
pub fn report_addresses(serial: &str) -> Vec<Address> {
    let mut addresses = Vec::new();
    for line in serial.lines() {
        let line = line.trim_end();
        if let Some(rest) = line.strip_prefix(BACKTRACE_PREFIX) {
            addresses.extend(rest.split_whitespace().filter_map(hex).map(Address::Return));
        } else if let Some(rest) = line.trim_start().strip_prefix(RIP_MARKER)
            && rest.contains(" rsp ")
            && let Some(rip) = rest.split_whitespace().next().and_then(hex)
        {
            // The exception report's register dump: `  rip 0x... rsp 0x... rflags 0x...`.
            addresses.push(Address::Faulting(rip));
        }
    }
    addresses
}

fn hex(word: &str) -> Option<u64> {
    u64::from_str_radix(word.strip_prefix("0x")?, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_come_from_backtrace_and_exception_lines_only() {
        let serial = "hello\n\
            exception: page fault (#PF, vector 14) at rip 0x100abc\n\
              rip 0x100abc is in the kernel's code\n\
              rip 0x0000000000100abc rsp 0x000000000010af90 rflags 0x46\n  rax 0x1\n\
            backtrace: 0x100200 0x100300\r\n\
            backtrace: 0xzz 0x10\n\
            said backtrace: 0x5\n";
        assert_eq!(
            report_addresses(serial),
            [
                Address::Faulting(0x100abc),
                Address::Return(0x100200),
                Address::Return(0x100300),
                Address::Return(0x10),
            ]
        );
        assert!(report_addresses("panicked at x\n").is_empty());
    }

    #[test]
    fn a_frame_reads_like_a_stack_trace() {
        let frame = Frame {
            function: Some("app::parse".into()),
            file: Some("src/main.rs".into()),
            line: Some(12),
        };
        assert_eq!(frame.to_string(), "app::parse (src/main.rs:12)");
        let unnamed = Frame {
            function: None,
            file: None,
            line: None,
        };
        assert_eq!(unnamed.to_string(), "??");
    }

    #[test]
    fn the_runner_itself_is_symbolized() {
        // The test binary has debug info: its own function's address names it.
        let exe = std::env::current_exe().unwrap();
        let symbolizer = Symbolizer::open(&exe).unwrap();
        let elf = std::fs::read(&exe).unwrap();
        let address = symbol_address(&elf, "report_addresses").expect("the symbol is there");
        let frames = symbolizer.frames(address);
        let first = frames.first().expect("a frame");
        assert!(
            first
                .function
                .as_deref()
                .is_some_and(|f| f.ends_with("report_addresses")),
            "{frames:?}"
        );
        assert!(
            first
                .file
                .as_deref()
                .is_some_and(|f| f.ends_with("symbolize.rs")),
            "{frames:?}"
        );
    }

    #[test]
    fn a_recursion_is_shown_once_with_its_count() {
        let exe = std::env::current_exe().unwrap();
        let symbolizer = Symbolizer::open(&exe).unwrap();
        let report = symbolizer
            .render("backtrace: 0x21 0x21 0x21 0x30\n")
            .unwrap();
        let lines: Vec<&str> = report
            .lines()
            .filter(|line| !line.contains("inlined into"))
            .collect();
        assert_eq!(lines.len(), 4, "{report}");
        assert!(lines[1].starts_with("   0: "), "{report}");
        assert_eq!(lines[2], "      and 2 more frames of the same call");
        assert!(lines[3].starts_with("   3: "), "{report}");
    }

    #[test]
    fn an_address_past_a_label_is_named_by_its_offset() {
        let exe = std::env::current_exe().unwrap();
        let mut symbolizer = Symbolizer::open(&exe).unwrap();
        assert!(
            symbolizer
                .labels
                .windows(2)
                .all(|pair| pair[0].0 <= pair[1].0),
            "sorted"
        );
        symbolizer.labels = vec![(0x1000, "entry".into()), (0x2000, "next".into())];
        assert_eq!(symbolizer.label_before(0x1000).as_deref(), Some("entry"));
        assert_eq!(
            symbolizer.label_before(0x1022).as_deref(),
            Some("entry+0x22")
        );
        assert_eq!(symbolizer.label_before(0x2001).as_deref(), Some("next+0x1"));
        assert_eq!(symbolizer.label_before(0xfff), None);
    }

    /// The address of the first function whose demangled name ends in `name`.
    fn symbol_address(elf: &[u8], name: &str) -> Option<u64> {
        use object::{Object, ObjectSymbol};
        let file = object::File::parse(elf).ok()?;
        file.symbols().find_map(|symbol| {
            let raw = symbol.name().ok()?;
            let demangled = addr2line::demangle_auto(raw.into(), None);
            (demangled.ends_with(&format!("symbolize::{name}")) && symbol.address() != 0)
                .then(|| symbol.address())
        })
    }
}
