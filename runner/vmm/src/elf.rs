//! The one ELF reader of the host tools (the runner and the monitor), on the `object` crate:
//! checks that a file is a bootable unikernel image before any VMM is started, and reads
//! its loadable segments, its notes (the PVH entry, the manifest) and its symbol names.
//!
//! A bootable image is a little-endian ELF64 file for x86_64 (an executable or a static
//! position-independent one) with at least one loadable segment and a way in:
//! - a Xen PVH note (`XEN_ELFNOTE_PHYS32_ENTRY`, owner "Xen", type 18) whose entry lies in a
//!   loadable segment: what `-M microvm`, `pc` and `q35` and the monitor use; or
//! - a multiboot (version 1) header in the first 8 KiB, which QEMU's `-kernel` also loads.
//!
//! Every number that comes from the file is checked before it is used: a segment or table
//! past the end of the file is "truncated", address ranges that overflow and loadable
//! segments that overlap are refused.

use std::path::Path;

use object::elf::{self, FileHeader64, ProgramHeader64};
use object::read::elf::{FileHeader, ProgramHeader, SectionHeader};
use object::{Endianness, LittleEndian};

/// `XEN_ELFNOTE_PHYS32_ENTRY`: the 32-bit physical entry point of a PVH kernel.
pub const XEN_ELFNOTE_PHYS32_ENTRY: u32 = 18;
/// The magic number of a multiboot (version 1) header.
pub const MULTIBOOT_MAGIC: u32 = 0x1BAD_B002;
/// How far into the file a multiboot header may start.
pub const MULTIBOOT_SEARCH: usize = 8192;

/// Where the class and the data encoding are in `e_ident`.
const EI_CLASS: usize = 4;
const EI_DATA: usize = 5;

/// Why a file is not a bootable image: the second half of "`<path>` is not a bootable
/// unikernel image: `<reason>`".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ElfError {
    #[error("it is not an ELF file")]
    NotElf,
    #[error("it is a 32-bit ELF file; an x86_64 unikernel is ELF64")]
    Class32,
    #[error("its ELF class ({0}) is invalid")]
    BadClass(u8),
    #[error("it is big-endian; x86_64 is little-endian")]
    BigEndian,
    #[error("it is built for {name} (e_machine {machine}), not x86_64")]
    OtherMachine { machine: u16, name: &'static str },
    #[error("it is a relocatable object file, not a linked executable")]
    Relocatable,
    #[error("it is a core dump")]
    Core,
    #[error("its ELF type ({0}) is not an executable")]
    NotExecutable(u16),
    /// What runs past the end of the file.
    #[error("the file is truncated ({0} runs past its end)")]
    Truncated(&'static str),
    #[error("a segment at {paddr:#x} has more file bytes ({filesz:#x}) than memory ({memsz:#x})")]
    FileLargerThanMemory { paddr: u64, filesz: u64, memsz: u64 },
    #[error("a segment at {paddr:#x} with {memsz:#x} bytes runs past the end of the address space")]
    AddressOverflow { paddr: u64, memsz: u64 },
    #[error("its loadable segments {0:#x}..{1:#x} and {2:#x}..{3:#x} overlap")]
    Overlap(u64, u64, u64, u64),
    #[error("it has no loadable segment")]
    NoLoadableSegment,
    #[error("its PVH entry note has a {0}-byte descriptor (expected 4 or 8)")]
    BadPvhNote(usize),
    #[error("its PVH entry point {0:#x} lies outside every loadable segment")]
    PvhEntryOutside(u64),
    #[error("it has neither a PVH entry note (.note.Xen, type 18) nor a multiboot header")]
    NoWayIn,
}

/// One loadable segment: `memsz` bytes at guest-physical `paddr`, the first `filesz` of
/// them from the file at `offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    pub paddr: u64,
    pub offset: u64,
    pub filesz: u64,
    pub memsz: u64,
}

impl Segment {
    /// The first address past the segment (checked when the image was read).
    pub fn end(&self) -> u64 {
        self.paddr + self.memsz
    }
}

/// What validation learnt about an image.
///
/// An image may have both ways in. QEMU's `-kernel` loader tries multiboot first, so there
/// such an image boots through multiboot unless its magic is masked; the monitor,
/// Firecracker and Cloud Hypervisor use the PVH note.
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
    /// The manifest's CPU count (1 without a manifest or a `cpus=N` in it).
    cpus: u16,
    /// The loadable segments with memory, sorted by address, none overlapping.
    pub segments: Vec<Segment>,
}

impl ImageInfo {
    /// Whether the image's manifest lists `subsystem`.
    pub fn declares(&self, subsystem: &str) -> bool {
        self.subsystems
            .as_ref()
            .is_some_and(|names| names.iter().any(|name| name == subsystem))
    }

    /// How many CPUs the image runs on: its manifest's `cpus=N` (1 without one).
    pub fn cpus(&self) -> u16 {
        self.cpus
    }
}

/// Why a file could not be validated: it could not be read, or it is not a bootable image.
#[derive(Debug, thiserror::Error)]
pub enum ValidateError {
    #[error("{} does not exist", .0.display())]
    NotFound(std::path::PathBuf),
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("{} is not a bootable unikernel image: {reason}", path.display())]
    NotBootable {
        path: std::path::PathBuf,
        reason: ElfError,
    },
}

/// Reads `path` and checks that it is a bootable unikernel image.
pub fn validate(path: &Path) -> Result<ImageInfo, ValidateError> {
    let bytes = read(path)?;
    inspect(&bytes).map_err(|reason| ValidateError::NotBootable {
        path: path.to_path_buf(),
        reason,
    })
}

/// Reads a file, with the error [`validate`] gives.
pub fn read(path: &Path) -> Result<Vec<u8>, ValidateError> {
    std::fs::read(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            ValidateError::NotFound(path.to_path_buf())
        } else {
            ValidateError::Read {
                path: path.to_path_buf(),
                source,
            }
        }
    })
}

/// Checks the bytes of an image.
pub fn inspect(bytes: &[u8]) -> Result<ImageInfo, ElfError> {
    // The identification bytes first, for messages more useful than "unsupported".
    if bytes.len() < 4 || bytes[..4] != elf::ELFMAG {
        return Err(ElfError::NotElf);
    }
    match bytes.get(EI_CLASS) {
        None => return Err(ElfError::Truncated("the ELF header")),
        Some(&elf::ELFCLASS64) => {}
        Some(&elf::ELFCLASS32) => return Err(ElfError::Class32),
        Some(&other) => return Err(ElfError::BadClass(other)),
    }
    match bytes.get(EI_DATA) {
        None => return Err(ElfError::Truncated("the ELF header")),
        Some(&elf::ELFDATA2LSB) => {}
        Some(_) => return Err(ElfError::BigEndian),
    }
    let header = FileHeader64::<Endianness>::parse(bytes)
        .map_err(|_| ElfError::Truncated("the ELF header"))?;
    let endian = Endianness::Little;
    let machine = header.e_machine(endian);
    if machine != elf::EM_X86_64 {
        return Err(ElfError::OtherMachine {
            machine,
            name: machine_name(machine),
        });
    }
    match header.e_type(endian) {
        elf::ET_EXEC | elf::ET_DYN => {}
        elf::ET_REL => return Err(ElfError::Relocatable),
        elf::ET_CORE => return Err(ElfError::Core),
        other => return Err(ElfError::NotExecutable(other)),
    }
    let program_headers = header
        .program_headers(endian, bytes)
        .map_err(|_| ElfError::Truncated("the program header table"))?;

    let mut segments = Vec::new();
    let mut notes = Vec::new();
    for header in program_headers {
        match header.p_type(endian) {
            elf::PT_LOAD => {
                if let Some(segment) = load_segment(header, endian, bytes)? {
                    segments.push(segment);
                }
            }
            elf::PT_NOTE => {
                let data = header
                    .data(endian, bytes)
                    .map_err(|_| ElfError::Truncated("a note segment"))?;
                notes.push(data);
            }
            _ => {}
        }
    }
    if segments.is_empty() {
        return Err(ElfError::NoLoadableSegment);
    }
    segments.sort_by_key(|segment| segment.paddr);
    if let Some(pair) = segments
        .windows(2)
        .find(|pair| pair[1].paddr < pair[0].end())
    {
        return Err(ElfError::Overlap(
            pair[0].paddr,
            pair[0].end(),
            pair[1].paddr,
            pair[1].end(),
        ));
    }
    // Note sections too, for images whose notes are not in a PT_NOTE segment; a damaged
    // section table is ignored (the program headers decide what boots).
    if let Ok(sections) = header.section_headers(endian, bytes) {
        for section in sections {
            if section.sh_type(endian) == elf::SHT_NOTE
                && let Ok(data) = section.data(endian, bytes)
            {
                notes.push(data);
            }
        }
    }

    let pvh = notes.iter().find_map(|data| {
        notes_in(data).find_map(|(name, kind, desc)| {
            (name == b"Xen" && kind == XEN_ELFNOTE_PHYS32_ENTRY).then_some(desc)
        })
    });
    let multiboot = find_multiboot(bytes);
    let pvh_entry = match pvh.map(pvh_entry) {
        Some(Ok(entry)) => {
            if !segments
                .iter()
                .any(|segment| (segment.paddr..segment.end()).contains(&entry))
            {
                return Err(ElfError::PvhEntryOutside(entry));
            }
            Some(entry)
        }
        Some(Err(reason)) if multiboot.is_none() => return Err(reason),
        _ => None,
    };
    if pvh_entry.is_none() && multiboot.is_none() {
        return Err(ElfError::NoWayIn);
    }
    let manifest = notes.iter().find_map(|data| {
        notes_in(data).find_map(|(name, kind, desc)| {
            unikernel_abi::manifest::is_manifest(name, kind).then(|| {
                let names = unikernel_abi::manifest::subsystems(desc)
                    .map(str::to_string)
                    .collect();
                (names, unikernel_abi::manifest::cpus(desc))
            })
        })
    });
    let (subsystems, cpus) = match manifest {
        Some((names, cpus)) => (Some(names), cpus),
        None => (None, 1),
    };
    Ok(ImageInfo {
        elf_entry: header.e_entry(endian),
        pvh_entry,
        multiboot_header: multiboot,
        subsystems,
        cpus,
        segments,
    })
}

/// A PT_LOAD header as a [`Segment`], checked; `None` for one without memory.
fn load_segment(
    header: &ProgramHeader64<Endianness>,
    endian: Endianness,
    bytes: &[u8],
) -> Result<Option<Segment>, ElfError> {
    let segment = Segment {
        paddr: header.p_paddr(endian),
        offset: header.p_offset(endian),
        filesz: header.p_filesz(endian),
        memsz: header.p_memsz(endian),
    };
    // Before the skip of empty segments: a loader copies file bytes of a segment that
    // claims no memory, so one must not slip past the checks below.
    if segment.filesz > segment.memsz {
        return Err(ElfError::FileLargerThanMemory {
            paddr: segment.paddr,
            filesz: segment.filesz,
            memsz: segment.memsz,
        });
    }
    if segment.memsz == 0 {
        return Ok(None);
    }
    if segment.paddr.checked_add(segment.memsz).is_none() {
        return Err(ElfError::AddressOverflow {
            paddr: segment.paddr,
            memsz: segment.memsz,
        });
    }
    let file_end = segment.offset.checked_add(segment.filesz);
    if file_end.is_none_or(|end| end > bytes.len() as u64) {
        return Err(ElfError::Truncated("a loadable segment"));
    }
    Ok(Some(segment))
}

/// The notes in a note area: (owner name without its NUL, type, descriptor). Stops at the
/// first malformed note.
fn notes_in(area: &[u8]) -> impl Iterator<Item = (&[u8], u32, &[u8])> {
    let notes =
        object::read::elf::NoteIterator::<FileHeader64<LittleEndian>>::new(LittleEndian, 4, area)
            .ok();
    let mut notes = notes.into_iter().flatten();
    std::iter::from_fn(move || {
        let note = notes.next()?.ok()?;
        Some((note.name(), note.n_type(LittleEndian), note.desc()))
    })
}

/// The entry point in a PVH note's descriptor (4 or 8 bytes, little-endian).
fn pvh_entry(desc: &[u8]) -> Result<u64, ElfError> {
    match *desc {
        [a, b, c, d] => Ok(u64::from(u32::from_le_bytes([a, b, c, d]))),
        [a, b, c, d, e, f, g, h] => Ok(u64::from_le_bytes([a, b, c, d, e, f, g, h])),
        _ => Err(ElfError::BadPvhNote(desc.len())),
    }
}

/// The file offset of a valid multiboot (v1) header, if any: the magic at a 4-byte
/// boundary in the first 8 KiB, followed by flags and a checksum that sum to zero with it.
fn find_multiboot(bytes: &[u8]) -> Option<usize> {
    let word = |at: usize| -> Option<u32> {
        let bytes: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
        Some(u32::from_le_bytes(bytes))
    };
    let limit = bytes.len().min(MULTIBOOT_SEARCH);
    (0..limit.saturating_sub(11)).step_by(4).find(|&at| {
        word(at) == Some(MULTIBOOT_MAGIC)
            && matches!(
                (word(at + 4), word(at + 8)),
                (Some(flags), Some(sum)) if MULTIBOOT_MAGIC.wrapping_add(flags).wrapping_add(sum) == 0
            )
    })
}

fn machine_name(machine: u16) -> &'static str {
    match machine {
        elf::EM_386 => "i386",
        elf::EM_ARM => "32-bit ARM",
        elf::EM_AARCH64 => "AArch64",
        elf::EM_RISCV => "RISC-V",
        _ => "another architecture",
    }
}

/// The names in an ELF64 file's symbol table, or `None` if it has none (a stripped image)
/// or it cannot be read.
pub fn symbol_names(bytes: &[u8]) -> Option<Vec<String>> {
    let endian = Endianness::Little;
    let header = FileHeader64::<Endianness>::parse(bytes).ok()?;
    let sections = header.sections(endian, bytes).ok()?;
    let symbols = sections.symbols(endian, bytes, elf::SHT_SYMTAB).ok()?;
    if symbols.is_empty() {
        return None;
    }
    symbols
        .iter()
        .map(|symbol| {
            symbols
                .symbol_name(endian, symbol)
                .ok()
                .map(|name| String::from_utf8_lossy(name).into_owned())
        })
        .collect()
}

/// A minimal image: the ELF header, `loads` program headers of PT_LOAD (paddr, filesz,
/// memsz, all data from offset 0x1000), one PT_NOTE with a PVH note, file length 0x2000.
#[cfg(test)]
pub(crate) fn test_image(loads: &[(u64, u64, u64)], pvh: Option<u32>) -> Vec<u8> {
    tests::image(loads, pvh)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal image: the ELF header, `loads` program headers of PT_LOAD (paddr, filesz,
    /// memsz, all data from offset 0x1000), one PT_NOTE with a PVH note, file length 0x2000.
    pub(super) fn image(loads: &[(u64, u64, u64)], pvh: Option<u32>) -> Vec<u8> {
        let mut bytes = vec![0u8; 0x2000];
        bytes[..4].copy_from_slice(&elf::ELFMAG);
        bytes[4] = elf::ELFCLASS64;
        bytes[5] = elf::ELFDATA2LSB;
        bytes[6] = 1;
        let put16 =
            |b: &mut Vec<u8>, at: usize, v: u16| b[at..at + 2].copy_from_slice(&v.to_le_bytes());
        let put32 =
            |b: &mut Vec<u8>, at: usize, v: u32| b[at..at + 4].copy_from_slice(&v.to_le_bytes());
        let put64 =
            |b: &mut Vec<u8>, at: usize, v: u64| b[at..at + 8].copy_from_slice(&v.to_le_bytes());
        put16(&mut bytes, 16, elf::ET_EXEC);
        put16(&mut bytes, 18, elf::EM_X86_64);
        put32(&mut bytes, 20, 1);
        put64(&mut bytes, 24, 0x10_0000);
        put64(&mut bytes, 32, 64); // e_phoff
        put16(&mut bytes, 52, 64); // e_ehsize
        put16(&mut bytes, 54, 56); // e_phentsize
        let phnum = loads.len() + usize::from(pvh.is_some());
        put16(&mut bytes, 56, phnum as u16);
        for (i, &(paddr, filesz, memsz)) in loads.iter().enumerate() {
            let at = 64 + i * 56;
            put32(&mut bytes, at, elf::PT_LOAD);
            put64(&mut bytes, at + 8, 0x1000);
            put64(&mut bytes, at + 16, paddr);
            put64(&mut bytes, at + 24, paddr);
            put64(&mut bytes, at + 32, filesz);
            put64(&mut bytes, at + 40, memsz);
        }
        if let Some(entry) = pvh {
            let at = 64 + loads.len() * 56;
            put32(&mut bytes, at, elf::PT_NOTE);
            put64(&mut bytes, at + 8, 0x800);
            put64(&mut bytes, at + 32, 20);
            put32(&mut bytes, 0x800, 4); // namesz
            put32(&mut bytes, 0x804, 4); // descsz
            put32(&mut bytes, 0x808, XEN_ELFNOTE_PHYS32_ENTRY);
            bytes[0x80c..0x810].copy_from_slice(b"Xen\0");
            put32(&mut bytes, 0x810, entry);
        }
        bytes
    }

    #[test]
    fn a_pvh_image_is_read_with_its_segments_and_entry() {
        let info = inspect(&image(&[(0x10_0000, 0x100, 0x2000)], Some(0x10_0010))).unwrap();
        assert_eq!(info.pvh_entry, Some(0x10_0010));
        assert_eq!(info.multiboot_header, None);
        assert_eq!(info.subsystems, None);
        assert_eq!(
            info.segments,
            [Segment {
                paddr: 0x10_0000,
                offset: 0x1000,
                filesz: 0x100,
                memsz: 0x2000
            }]
        );
    }

    #[test]
    fn what_is_not_an_x86_64_executable_is_refused_with_the_reason() {
        assert_eq!(inspect(b"MZ\x90\0"), Err(ElfError::NotElf));
        let mut bytes = image(&[(0x10_0000, 0x100, 0x100)], Some(0x10_0000));
        bytes[4] = elf::ELFCLASS32;
        assert_eq!(inspect(&bytes), Err(ElfError::Class32));
        bytes[4] = elf::ELFCLASS64;
        bytes[5] = elf::ELFDATA2MSB;
        assert_eq!(inspect(&bytes), Err(ElfError::BigEndian));
        bytes[5] = elf::ELFDATA2LSB;
        bytes[18] = elf::EM_AARCH64 as u8;
        assert!(matches!(
            inspect(&bytes),
            Err(ElfError::OtherMachine {
                name: "AArch64",
                ..
            })
        ));
        bytes[18] = elf::EM_X86_64 as u8;
        bytes[16] = elf::ET_REL as u8;
        assert_eq!(inspect(&bytes), Err(ElfError::Relocatable));
    }

    #[test]
    fn a_cut_file_is_truncated_not_a_panic() {
        let bytes = image(&[(0x10_0000, 0x100, 0x100)], Some(0x10_0000));
        for len in [5, 40, 63, 100, 0x810, 0x1050] {
            let err = inspect(&bytes[..len]).unwrap_err();
            assert!(matches!(err, ElfError::Truncated(_)), "{len}: {err}");
            assert!(
                err.to_string().starts_with("the file is truncated"),
                "{err}"
            );
        }
    }

    #[test]
    fn numbers_from_the_file_are_checked() {
        let overflow = image(&[(u64::MAX - 0x10, 0, 0x100)], None);
        assert!(matches!(
            inspect(&overflow),
            Err(ElfError::AddressOverflow { .. })
        ));
        let past_end = image(&[(0x10_0000, 0x10_0000, 0x10_0000)], None);
        assert_eq!(
            inspect(&past_end),
            Err(ElfError::Truncated("a loadable segment"))
        );
        // File bytes in a segment without memory: hidden from the overlap and range
        // checks if it were skipped, yet a loader would copy them.
        let no_memory = image(
            &[(0x10_0000, 0, 0x100), (0x1000, 0x100, 0)],
            Some(0x10_0000),
        );
        assert!(matches!(
            inspect(&no_memory),
            Err(ElfError::FileLargerThanMemory { memsz: 0, .. })
        ));
        let mut offset_overflow = image(&[(0x10_0000, 0x10, 0x100)], Some(0x10_0000));
        offset_overflow[64 + 8..64 + 16].copy_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(
            inspect(&offset_overflow),
            Err(ElfError::Truncated("a loadable segment"))
        );
        let end_overflow = image(&[(u64::MAX - 0xff, 0, 0x100)], None);
        assert!(matches!(
            inspect(&end_overflow),
            Err(ElfError::AddressOverflow { .. })
        ));
        let bigger_file = image(&[(0x10_0000, 0x200, 0x100)], None);
        assert!(matches!(
            inspect(&bigger_file),
            Err(ElfError::FileLargerThanMemory { .. })
        ));
        let overlap = image(
            &[(0x10_0000, 0, 0x2000), (0x10_1000, 0, 0x100)],
            Some(0x10_0000),
        );
        assert_eq!(
            inspect(&overlap),
            Err(ElfError::Overlap(
                0x10_0000, 0x10_2000, 0x10_1000, 0x10_1100
            ))
        );
    }

    #[test]
    fn the_way_in_must_exist_and_lie_in_a_segment() {
        assert_eq!(
            inspect(&image(&[(0x10_0000, 0, 0x100)], None)),
            Err(ElfError::NoWayIn)
        );
        assert_eq!(
            inspect(&image(&[(0x10_0000, 0, 0x100)], Some(0x20_0000))),
            Err(ElfError::PvhEntryOutside(0x20_0000))
        );
        assert_eq!(
            inspect(&image(&[], Some(0x10_0000))),
            Err(ElfError::NoLoadableSegment)
        );
        // A multiboot header alone is a way in.
        let mut bytes = image(&[(0x10_0000, 0, 0x100)], None);
        let sum = 0u32.wrapping_sub(MULTIBOOT_MAGIC);
        bytes[0x1000..0x1004].copy_from_slice(&MULTIBOOT_MAGIC.to_le_bytes());
        bytes[0x1008..0x100c].copy_from_slice(&sum.to_le_bytes());
        assert_eq!(inspect(&bytes).unwrap().multiboot_header, Some(0x1000));
    }

    #[test]
    fn a_file_without_a_symbol_table_has_no_names() {
        let bytes = image(&[(0x10_0000, 0, 0x100)], Some(0x10_0000));
        assert_eq!(symbol_names(&bytes), None);
        assert_eq!(symbol_names(b"not an elf"), None);
    }
}
