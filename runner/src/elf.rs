//! Checks that a file is an image QEMU can boot with `-kernel`, before QEMU is started.
//!
//! A bootable image is a little-endian ELF64 file for x86_64 (an executable or a static
//! position-independent one) with at least one loadable segment and a way in:
//! - a Xen PVH note (`XEN_ELFNOTE_PHYS32_ENTRY`, owner "Xen", type 18) whose entry lies in a
//!   loadable segment: what `-M microvm`, `pc` and `q35` use; or
//! - a multiboot (version 1) header in the first 8 KiB, which QEMU's `-kernel` also loads.

use std::path::Path;

use crate::error::{Error, Result};

/// `XEN_ELFNOTE_PHYS32_ENTRY`: the 32-bit physical entry point of a PVH kernel.
pub const XEN_ELFNOTE_PHYS32_ENTRY: u32 = 18;
/// The magic number of a multiboot (version 1) header.
pub const MULTIBOOT_MAGIC: u32 = 0x1BAD_B002;
/// How far into the file a multiboot header may start.
pub const MULTIBOOT_SEARCH: usize = 8192;

const EM_X86_64: u16 = 62;
const PT_LOAD: u32 = 1;
const PT_NOTE: u32 = 4;
const SHT_NOTE: u32 = 7;

/// What validation learnt about an image.
///
/// An image may have both ways in. QEMU's `-kernel` loader (7.2) tries multiboot first, so
/// there such an image boots through multiboot, whose command line starts with the kernel's
/// file name; Firecracker and Cloud Hypervisor use the PVH note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    /// The ELF entry point (`e_entry`).
    pub elf_entry: u64,
    /// The PVH entry point (a physical address), if there is a PVH note.
    pub pvh_entry: Option<u64>,
    /// The file offset of the multiboot header, if there is one.
    pub multiboot_header: Option<usize>,
    /// The subsystems the image starts, from its manifest note (`None` for images not
    /// built with `#[unikernel]`, such as the floor kernel).
    pub subsystems: Option<Vec<String>>,
}

impl ImageInfo {
    /// Whether the image declares (or was given) `subsystem`.
    pub fn declares(&self, subsystem: &str) -> bool {
        self.subsystems
            .as_ref()
            .is_some_and(|names| names.iter().any(|name| name == subsystem))
    }
}

/// Reads `path` and checks that it is a bootable unikernel image.
///
/// The error is one sentence: "<path> is not a bootable unikernel image: <reason>".
pub fn validate(path: &Path) -> Result<ImageInfo> {
    let bytes = std::fs::read(path).map_err(|err| {
        if err.kind() == std::io::ErrorKind::NotFound {
            Error::new(format!("{} does not exist", path.display()))
        } else {
            Error::new(format!("cannot read {}: {err}", path.display()))
        }
    })?;
    inspect(&bytes).map_err(|reason| {
        Error::new(format!(
            "{} is not a bootable unikernel image: {reason}",
            path.display()
        ))
    })
}

/// Checks the bytes of an image; the error is the reason, without the path.
pub fn inspect(bytes: &[u8]) -> Result<ImageInfo, String> {
    if bytes.len() < 4 || &bytes[..4] != b"\x7fELF" {
        return Err("it is not an ELF file".into());
    }
    if bytes.len() < 64 {
        return Err("it is truncated (the ELF header is incomplete)".into());
    }
    match bytes[4] {
        2 => {}
        1 => return Err("it is a 32-bit ELF file; an x86_64 unikernel is ELF64".into()),
        other => return Err(format!("its ELF class ({other}) is invalid")),
    }
    if bytes[5] != 1 {
        return Err("it is big-endian; x86_64 is little-endian".into());
    }
    let r = Reader { bytes };
    let e_type = r.u16(16).unwrap_or(0);
    let machine = r.u16(18).unwrap_or(0);
    if machine != EM_X86_64 {
        return Err(format!(
            "it is built for {} (e_machine {machine}), not x86_64",
            machine_name(machine)
        ));
    }
    match e_type {
        2 | 3 => {}
        1 => return Err("it is a relocatable object file, not a linked executable".into()),
        4 => return Err("it is a core dump".into()),
        other => return Err(format!("its ELF type ({other}) is not an executable")),
    }
    let elf_entry = r.u64(24).ok_or("it is truncated")?;
    let phoff = r.u64(32).ok_or("it is truncated")?;
    let shoff = r.u64(40).ok_or("it is truncated")?;
    let phentsize = r.u16(54).ok_or("it is truncated")? as u64;
    let phnum = r.u16(56).ok_or("it is truncated")? as u64;
    let shentsize = r.u16(58).ok_or("it is truncated")? as u64;
    let shnum = r.u16(60).ok_or("it is truncated")? as u64;

    let mut loads = Vec::new();
    let mut notes = Vec::new();
    if phnum > 0 {
        if phentsize < 56 {
            return Err("its program header entries are too small".into());
        }
        for i in 0..phnum {
            let at = phoff
                .checked_add(i * phentsize)
                .and_then(|at| usize::try_from(at).ok())
                .filter(|&at| at.saturating_add(56) <= bytes.len())
                .ok_or("it is truncated (the program header table runs past the end)")?;
            let p_type = r.u32(at).unwrap_or(0);
            let offset = r.u64(at + 8).unwrap_or(0);
            let paddr = r.u64(at + 24).unwrap_or(0);
            let filesz = r.u64(at + 32).unwrap_or(0);
            let memsz = r.u64(at + 40).unwrap_or(0);
            match p_type {
                PT_LOAD if memsz > 0 => loads.push((paddr, memsz)),
                PT_NOTE => notes.push((offset, filesz)),
                _ => {}
            }
        }
    }
    if loads.is_empty() {
        return Err("it has no loadable segment".into());
    }
    if shnum > 0 && shentsize >= 64 {
        for i in 0..shnum {
            let Some(at) = shoff
                .checked_add(i * shentsize)
                .and_then(|at| usize::try_from(at).ok())
                .filter(|&at| at.saturating_add(64) <= bytes.len())
            else {
                break; // A damaged section table; the program headers decide.
            };
            if r.u32(at + 4) == Some(SHT_NOTE) {
                notes.push((r.u64(at + 24).unwrap_or(0), r.u64(at + 32).unwrap_or(0)));
            }
        }
    }

    let pvh = notes
        .iter()
        .find_map(|&(offset, size)| pvh_entry(bytes, offset, size));
    let multiboot = find_multiboot(bytes);
    let pvh_entry = match pvh {
        Some(Ok(addr)) => {
            if !loads
                .iter()
                .any(|&(paddr, memsz)| addr >= paddr && addr - paddr < memsz)
            {
                return Err(format!(
                    "its PVH entry point {addr:#x} lies outside every loadable segment"
                ));
            }
            Some(addr)
        }
        Some(Err(reason)) if multiboot.is_none() => return Err(reason),
        _ => None,
    };
    if pvh_entry.is_none() && multiboot.is_none() {
        return Err(
            "it has neither a PVH entry note (.note.Xen, type 18) nor a multiboot header".into(),
        );
    }
    let subsystems = notes
        .iter()
        .find_map(|&(offset, size)| manifest(bytes, offset, size));
    Ok(ImageInfo {
        elf_entry,
        pvh_entry,
        multiboot_header: multiboot,
        subsystems,
    })
}

/// The notes in `bytes[offset..offset + size]`: (name without its NUL, type, description).
/// Stops at the first malformed note.
fn notes_in(bytes: &[u8], offset: u64, size: u64) -> impl Iterator<Item = (&[u8], u32, &[u8])> {
    let area = usize::try_from(offset)
        .ok()
        .zip(usize::try_from(size).ok())
        .and_then(|(start, size)| bytes.get(start..start.checked_add(size)?))
        .unwrap_or(&[]);
    let mut at = 0;
    std::iter::from_fn(move || {
        let r = Reader { bytes: area };
        let namesz = r.u32(at)? as usize;
        let descsz = r.u32(at + 4)? as usize;
        let kind = r.u32(at + 8)?;
        let name_at = at + 12;
        let desc_at = name_at.checked_add(namesz.checked_next_multiple_of(4)?)?;
        let name = area.get(name_at..name_at.checked_add(namesz)?)?;
        let desc = area.get(desc_at..desc_at.checked_add(descsz)?)?;
        at = desc_at.checked_add(descsz.checked_next_multiple_of(4)?)?;
        Some((name.strip_suffix(b"\0").unwrap_or(name), kind, desc))
    })
}

/// Xen's PVH entry note (type 18), if it is among the notes.
fn pvh_entry(bytes: &[u8], offset: u64, size: u64) -> Option<Result<u64, String>> {
    let (_, _, desc) = notes_in(bytes, offset, size)
        .find(|&(name, kind, _)| name == b"Xen" && kind == XEN_ELFNOTE_PHYS32_ENTRY)?;
    Some(match *desc {
        [a, b, c, d] => Ok(u64::from(u32::from_le_bytes([a, b, c, d]))),
        [a, b, c, d, e, f, g, h] => Ok(u64::from_le_bytes([a, b, c, d, e, f, g, h])),
        _ => Err(format!(
            "its PVH entry note has a {}-byte descriptor (expected 4 or 8)",
            desc.len()
        )),
    })
}

/// The subsystems the image's manifest note (name `Unikernel`, type 1, written by
/// `#[unikernel]`) lists, in boot order.
fn manifest(bytes: &[u8], offset: u64, size: u64) -> Option<Vec<String>> {
    let (_, _, desc) =
        notes_in(bytes, offset, size).find(|&(name, kind, _)| name == b"Unikernel" && kind == 1)?;
    let text = String::from_utf8_lossy(desc);
    Some(
        text.trim_end_matches('\0')
            .split_ascii_whitespace()
            .map(str::to_string)
            .collect(),
    )
}

/// The file offset of a valid multiboot (v1) header, if any.
fn find_multiboot(bytes: &[u8]) -> Option<usize> {
    let r = Reader { bytes };
    let limit = bytes.len().min(MULTIBOOT_SEARCH);
    (0..limit.saturating_sub(11)).step_by(4).find(|&at| {
        r.u32(at) == Some(MULTIBOOT_MAGIC)
            && matches!(
                (r.u32(at + 4), r.u32(at + 8)),
                (Some(flags), Some(sum)) if MULTIBOOT_MAGIC.wrapping_add(flags).wrapping_add(sum) == 0
            )
    })
}

fn machine_name(machine: u16) -> &'static str {
    match machine {
        3 => "i386",
        40 => "32-bit ARM",
        183 => "AArch64",
        243 => "RISC-V",
        _ => "another architecture",
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl Reader<'_> {
    fn array<const N: usize>(&self, at: usize) -> Option<[u8; N]> {
        self.bytes.get(at..at.checked_add(N)?)?.try_into().ok()
    }
    fn u16(&self, at: usize) -> Option<u16> {
        self.array(at).map(u16::from_le_bytes)
    }
    fn u32(&self, at: usize) -> Option<u32> {
        self.array(at).map(u32::from_le_bytes)
    }
    fn u64(&self, at: usize) -> Option<u64> {
        self.array(at).map(u64::from_le_bytes)
    }
}

/// The names in an ELF64 file's symbol table, or `None` if it has none.
pub fn symbol_names(bytes: &[u8]) -> Option<Vec<String>> {
    let get = |at: usize, len: usize| bytes.get(at..at + len);
    let u16_at = |at: usize| Some(u16::from_le_bytes(get(at, 2)?.try_into().ok()?) as usize);
    let u32_at = |at: usize| Some(u32::from_le_bytes(get(at, 4)?.try_into().ok()?) as usize);
    let u64_at = |at: usize| Some(u64::from_le_bytes(get(at, 8)?.try_into().ok()?) as usize);
    if get(0, 4)? != b"\x7fELF" {
        return None;
    }
    let (shoff, shentsize, shnum) = (u64_at(0x28)?, u16_at(0x3a)?, u16_at(0x3c)?);
    let section = |index: usize| shoff + index * shentsize;
    let symtab = (0..shnum)
        .map(section)
        .find(|&header| u32_at(header + 4) == Some(2))?; // SHT_SYMTAB
    let strtab = section(u32_at(symtab + 40)?);
    let (strings, at, size) = (
        u64_at(strtab + 24)?,
        u64_at(symtab + 24)?,
        u64_at(symtab + 32)?,
    );
    let mut names = Vec::new();
    for symbol in (at..at + size).step_by(24) {
        let start = strings + u32_at(symbol)?;
        let len = bytes.get(start..)?.iter().position(|&b| b == 0)?;
        names.push(String::from_utf8_lossy(&bytes[start..start + len]).into_owned());
    }
    Some(names)
}
