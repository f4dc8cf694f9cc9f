//! Turning a CPU exception into a report a person can act on.
//!
//! The decoding is plain logic, unit-tested on the host; the handler that calls it is in
//! `cpu.rs`.

use core::fmt;

/// The registers the exception entry saves, in the order it pushes them (last pushed first).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct TrapFrame {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rbp: u64,
    pub rdi: u64,
    pub rsi: u64,
    pub rdx: u64,
    pub rcx: u64,
    pub rbx: u64,
    pub rax: u64,
    pub vector: u64,
    pub error_code: u64,
    // Pushed by the CPU.
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}

/// Vectors 0-31 by their architectural name and mnemonic; `None` where the vector is
/// reserved.
const EXCEPTIONS: [Option<(&str, &str)>; 32] = [
    Some(("divide error", "#DE")),
    Some(("debug", "#DB")),
    Some(("non-maskable interrupt", "NMI")),
    Some(("breakpoint", "#BP")),
    Some(("overflow", "#OF")),
    Some(("bound range exceeded", "#BR")),
    Some(("invalid opcode", "#UD")),
    Some(("device not available", "#NM")),
    Some(("double fault", "#DF")),
    Some(("coprocessor segment overrun", "#MF")),
    Some(("invalid TSS", "#TS")),
    Some(("segment not present", "#NP")),
    Some(("stack-segment fault", "#SS")),
    Some(("general protection fault", "#GP")),
    Some(("page fault", "#PF")),
    None,
    Some(("x87 floating-point error", "#MF")),
    Some(("alignment check", "#AC")),
    Some(("machine check", "#MC")),
    Some(("SIMD floating-point exception", "#XM")),
    Some(("virtualization exception", "#VE")),
    Some(("control protection exception", "#CP")),
    None,
    None,
    None,
    None,
    None,
    None,
    Some(("hypervisor injection exception", "#HV")),
    Some(("VMM communication exception", "#VC")),
    Some(("security exception", "#SX")),
    None,
];

/// What the image holds of [`EXCEPTIONS`], built at compile time: the names one after
/// another, where each ends, and the three-letter mnemonics (hello is 352 bytes smaller
/// than with a `match` of string pairs).
struct PackedNames {
    names: [u8; NAMES_LEN],
    ends: [u16; 32],
    mnemonics: [u8; 3 * 32],
}

const NAMES_LEN: usize = {
    let mut len = 0;
    let mut vector = 0;
    while vector < 32 {
        if let Some((name, _)) = EXCEPTIONS[vector] {
            len += name.len();
        }
        vector += 1;
    }
    len
};

const PACKED_NAMES: PackedNames = {
    let mut packed = PackedNames {
        names: [0; NAMES_LEN],
        ends: [0; 32],
        mnemonics: [0; 3 * 32],
    };
    let mut end = 0;
    let mut vector = 0;
    while vector < 32 {
        if let Some((name, mnemonic)) = EXCEPTIONS[vector] {
            let mut i = 0;
            while i < name.len() {
                packed.names[end + i] = name.as_bytes()[i];
                i += 1;
            }
            end += name.len();
            assert!(mnemonic.len() == 3, "mnemonics have three letters");
            let mut i = 0;
            while i < 3 {
                packed.mnemonics[3 * vector + i] = mnemonic.as_bytes()[i];
                i += 1;
            }
        }
        packed.ends[vector] = end as u16;
        vector += 1;
    }
    packed
};

/// The names of [`PACKED_NAMES`] as one string, checked at compile time.
const NAMES: &str = match core::str::from_utf8(&PACKED_NAMES.names) {
    Ok(names) => names,
    Err(_) => panic!("exception names are UTF-8"),
};

/// The mnemonics of [`PACKED_NAMES`], three bytes a vector.
const MNEMONICS: &str = match core::str::from_utf8(&PACKED_NAMES.mnemonics) {
    Ok(mnemonics) => mnemonics,
    Err(_) => panic!("mnemonics are UTF-8"),
};

/// The architectural name and mnemonic of exception `vector`.
pub fn exception_name(vector: u64) -> (&'static str, &'static str) {
    const RESERVED: (&str, &str) = ("reserved exception", "#??");
    let Some(vector) = usize::try_from(vector).ok().filter(|&vector| vector < 32) else {
        return RESERVED;
    };
    let ends = &PACKED_NAMES.ends;
    let start = vector
        .checked_sub(1)
        .and_then(|before| ends.get(before))
        .map_or(0, |&end| end.into());
    let end = ends.get(vector).map_or(0, |&end| end.into());
    // Slices of ASCII strings at whole names: `get` finds them on character boundaries.
    match (
        NAMES.get(start..end),
        MNEMONICS.get(3 * vector..3 * vector + 3),
    ) {
        (Some(name), Some(mnemonic)) if start < end => (name, mnemonic),
        _ => RESERVED,
    }
}

/// A named range of the address space, to say what a faulting address hit.
#[derive(Clone, Copy, Debug)]
pub struct Area {
    pub name: &'static str,
    pub start: u64,
    pub end: u64,
    pub is_stack_guard: bool,
}

impl Area {
    fn contains(&self, addr: u64) -> bool {
        (self.start..self.end).contains(&addr)
    }
}

/// Everything known about one exception.
#[derive(Debug)]
pub struct Fault<'a> {
    pub frame: &'a TrapFrame,
    /// CR2: the address a page fault tried to access.
    pub fault_address: u64,
    /// The kernel's named areas (code, rodata, stack guard pages, ...).
    pub areas: &'a [Area],
}

impl Fault<'_> {
    /// The most specific area holding `addr`: guard pages lie inside the data area.
    fn area_of(&self, addr: u64) -> Option<&Area> {
        let mut holding = self.areas.iter().filter(|area| area.contains(addr));
        holding
            .clone()
            .find(|area| area.is_stack_guard)
            .or_else(|| holding.next())
    }

    fn hit_stack_guard(&self) -> Option<&Area> {
        let vector = self.frame.vector;
        let addr = if vector == 14 {
            self.fault_address
        } else {
            self.frame.rsp
        };
        self.area_of(addr)
            .filter(|area| area.is_stack_guard && (vector == 14 || vector == 8))
    }
}

impl fmt::Display for Fault<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let frame = self.frame;
        let (name, mnemonic) = exception_name(frame.vector);
        if let Some(guard) = self.hit_stack_guard() {
            writeln!(
                f,
                "exception: stack overflow: {} ran into its guard page at {:#x} ({name}, {mnemonic})",
                guard.name, guard.start
            )?;
            if guard.name == crate::context::MAIN_STACK {
                writeln!(
                    f,
                    "  the main stack is {}; choose its size with `stack = \"...\"` in `#[unikernel(...)]`",
                    crate::memory::Size(crate::context::main_stack_size() as u64)
                )?;
            }
        } else {
            writeln!(
                f,
                "exception: {name} ({mnemonic}, vector {}) at rip {:#x}",
                frame.vector, frame.rip
            )?;
        }
        match frame.vector {
            14 => {
                let addr = self.fault_address;
                write!(
                    f,
                    "  page fault at address {addr:#x}: {}",
                    PageFaultCause(frame.error_code)
                )?;
                if addr < 4096 {
                    write!(f, " (null pointer dereference)")?;
                } else if let Some(area) = self.area_of(addr) {
                    if area.is_stack_guard {
                        write!(f, " (the guard page below {})", area.name)?;
                    } else {
                        write!(f, " (in {})", area.name)?;
                    }
                }
                writeln!(f)?;
            }
            13 if frame.error_code != 0 => {
                writeln!(
                    f,
                    "  error code {:#x}: {}",
                    frame.error_code,
                    SelectorError(frame.error_code)
                )?;
            }
            8 | 10 | 11 | 12 | 13 | 17 | 21 | 29 | 30 => {
                writeln!(f, "  error code {:#x}", frame.error_code)?;
            }
            _ => {}
        }
        if let Some(area) = self.area_of(frame.rip) {
            writeln!(f, "  rip {:#x} is in {}", frame.rip, area.name)?;
        }
        frame.write_registers(f)
    }
}

impl TrapFrame {
    /// The frame as the words it is made of, in field order.
    fn words(&self) -> &[u64; size_of::<TrapFrame>() / 8] {
        // SAFETY: `TrapFrame` is `repr(C)` and all its fields are u64: it has the layout of
        // an array of them, and the view borrows `self`.
        unsafe { &*(self as *const Self).cast() }
    }

    /// The register dump, three registers a line: `  rip 0x... rsp 0x... rflags 0x...`
    /// first (the runner finds the faulting address there), then the general registers.
    /// One formatted write in a loop over a table costs the image less than a `writeln!`
    /// with its arguments per line.
    fn write_registers(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Names padded to six bytes, and each register's word in the frame.
        const NAMES: &str = "rip   rsp   rflagsrax   rbx   rcx   rdx   rsi   rdi   \
                             rbp   r8    r9    r10   r11   r12   r13   r14   r15   ";
        const WORDS: [u8; 18] = [17, 20, 19, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0];
        let words = self.words();
        for (i, &word) in WORDS.iter().enumerate() {
            let name = NAMES.get(6 * i..6 * i + 6).unwrap_or_default();
            let separator = match i % 3 {
                0 if i > 0 => "\n  ",
                0 => "  ",
                _ => " ",
            };
            let value = words.get(usize::from(word)).copied().unwrap_or_default();
            write!(f, "{separator}{:<3} {value:#018x}", name.trim_ascii_end())?;
        }
        Ok(())
    }
}

/// A page fault's error code in words.
struct PageFaultCause(u64);

impl fmt::Display for PageFaultCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let code = self.0;
        let access = if code & (1 << 4) != 0 {
            "instruction fetch from"
        } else if code & (1 << 1) != 0 {
            "write to"
        } else {
            "read from"
        };
        let page = if code & 1 == 0 {
            "an unmapped page"
        } else if code & (1 << 3) != 0 {
            "a page with reserved bits set"
        } else if code & (1 << 4) != 0 {
            "a no-execute page"
        } else if code & (1 << 1) != 0 {
            "a read-only page"
        } else {
            "a protected page"
        };
        write!(f, "{access} {page}")
    }
}

/// The selector error code of #GP, #TS, #NP and #SS.
struct SelectorError(u64);

impl fmt::Display for SelectorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let index = (self.0 >> 3) & 0x1fff;
        match (self.0 >> 1) & 0b11 {
            0b01 | 0b11 => write!(f, "IDT entry {index} (an interrupt with no handler)"),
            0b00 => write!(f, "GDT selector {:#x}", self.0 & !0b111),
            _ => write!(f, "LDT selector {:#x}", self.0 & !0b111),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::string::ToString;

    const AREAS: [Area; 2] = [
        Area {
            name: "the kernel's code",
            start: 0x100000,
            end: 0x104000,
            is_stack_guard: false,
        },
        Area {
            name: "the boot stack",
            start: 0x110000,
            end: 0x111000,
            is_stack_guard: true,
        },
    ];

    fn report(vector: u64, error_code: u64, fault_address: u64) -> std::string::String {
        let frame = TrapFrame {
            vector,
            error_code,
            rip: 0x100123,
            rsp: 0x118000,
            ..Default::default()
        };
        Fault {
            frame: &frame,
            fault_address,
            areas: &AREAS,
        }
        .to_string()
    }

    #[test]
    fn null_read_is_named() {
        let text = report(14, 0, 0);
        assert!(
            text.starts_with("exception: page fault (#PF, vector 14) at rip 0x100123\n"),
            "{text}"
        );
        assert!(text.contains(
            "page fault at address 0x0: read from an unmapped page (null pointer dereference)"
        ));
        assert!(text.contains("rip 0x100123 is in the kernel's code"));
    }

    #[test]
    fn write_to_code_is_a_protection_fault() {
        let text = report(14, 0b11, 0x100010);
        assert!(
            text.contains("write to a read-only page (in the kernel's code)"),
            "{text}"
        );
    }

    #[test]
    fn guard_page_hit_is_a_stack_overflow() {
        let text = report(14, 0b10, 0x110ff8);
        assert!(
            text.starts_with(
                "exception: stack overflow: the boot stack ran into its guard page at 0x110000"
            ),
            "{text}"
        );
    }

    /// The main stack's overflow says how large it is and how to choose its size; other
    /// stacks' do not.
    #[test]
    fn main_stack_overflow_names_its_size() {
        let areas = [Area {
            name: crate::context::MAIN_STACK,
            ..AREAS[1]
        }];
        let frame = TrapFrame {
            vector: 14,
            error_code: 0b10,
            rip: 0x100123,
            rsp: 0x118000,
            ..Default::default()
        };
        let text = Fault {
            frame: &frame,
            fault_address: 0x110ff8,
            areas: &areas,
        }
        .to_string();
        assert!(
            text.starts_with(
                "exception: stack overflow: the main stack ran into its guard page at 0x110000 \
                 (page fault, #PF)\n  the main stack is 256 KiB; choose its size with \
                 `stack = \"...\"` in `#[unikernel(...)]`\n"
            ),
            "{text}"
        );
        assert!(!report(14, 0b10, 0x110ff8).contains("choose its size"));
    }

    /// The dump ends the report: three registers a line, `rip` first, each padded to 16
    /// hex digits.
    #[test]
    fn registers_are_dumped_three_a_line() {
        let frame = TrapFrame {
            vector: 6,
            rip: 0x100123,
            rsp: 0x118000,
            rflags: 0x46,
            rax: 1,
            r8: 8,
            r15: 0xffff_ffff_ffff_ffff,
            ..Default::default()
        };
        let text = Fault {
            frame: &frame,
            fault_address: 0,
            areas: &[],
        }
        .to_string();
        let dump = text.split_once('\n').unwrap().1;
        assert_eq!(
            dump,
            "  rip 0x0000000000100123 rsp 0x0000000000118000 rflags 0x0000000000000046\n\
             \x20 rax 0x0000000000000001 rbx 0x0000000000000000 rcx 0x0000000000000000\n\
             \x20 rdx 0x0000000000000000 rsi 0x0000000000000000 rdi 0x0000000000000000\n\
             \x20 rbp 0x0000000000000000 r8  0x0000000000000008 r9  0x0000000000000000\n\
             \x20 r10 0x0000000000000000 r11 0x0000000000000000 r12 0x0000000000000000\n\
             \x20 r13 0x0000000000000000 r14 0x0000000000000000 r15 0xffffffffffffffff"
        );
    }

    #[test]
    fn gp_on_idt_entry_names_the_vector() {
        let text = report(13, (40 << 3) | 0b10, 0);
        assert!(
            text.contains("IDT entry 40 (an interrupt with no handler)"),
            "{text}"
        );
    }

    #[test]
    fn every_vector_has_a_name() {
        assert_eq!(exception_name(0), ("divide error", "#DE"));
        assert_eq!(exception_name(6), ("invalid opcode", "#UD"));
        assert_eq!(exception_name(15), ("reserved exception", "#??"));
        assert_eq!(exception_name(31), ("reserved exception", "#??"));
        assert_eq!(exception_name(32), ("reserved exception", "#??"));
        assert_eq!(exception_name(u64::MAX).1, "#??");
        for (vector, entry) in EXCEPTIONS.iter().enumerate() {
            let expected = entry.unwrap_or(("reserved exception", "#??"));
            assert_eq!(exception_name(vector as u64), expected, "vector {vector}");
        }
    }
}
