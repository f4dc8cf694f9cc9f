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
/// What precedes the faulting instruction's address in an exception report.
const RIP_MARKER: &str = " at rip ";

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
        Ok(Symbolizer {
            loader,
            relative_to: std::env::current_dir().ok(),
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
        if frames.iter().all(|frame| frame.function.is_none())
            && let Some(symbol) = self.loader.find_symbol(address)
        {
            let function = Some(addr2line::demangle_auto(symbol.into(), None).into_owned());
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
        for (index, address) in addresses.iter().enumerate() {
            // A return address is the instruction after the call: look up the call.
            let probe = match address {
                Address::Faulting(rip) => *rip,
                Address::Return(ret) => ret.saturating_sub(1),
            };
            let raw = match address {
                Address::Faulting(a) | Address::Return(a) => *a,
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
        }
        Some(out)
    }
}

/// Whether `serial` holds a backtrace or an exception report to symbolize.
pub fn has_report(serial: &str) -> bool {
    !report_addresses(serial).is_empty()
}

/// An address from the guest's report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Address {
    /// The instruction that faulted (`exception: ... at rip 0x...`).
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
        } else if line.starts_with("exception:")
            && let Some((_, rest)) = line.split_once(RIP_MARKER)
            && let Some(rip) = rest.split_whitespace().next().and_then(hex)
        {
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
            exception: page fault (#PF, vector 14) at rip 0x100abc\n  rax 0x1\n\
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
