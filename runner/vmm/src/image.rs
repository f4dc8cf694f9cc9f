//! Putting a PVH image into guest memory: its PT_LOAD segments (with linux-loader), the
//! zeroed part of each segment, and the PVH `hvm_start_info` with the memory map and the
//! command line.

use std::io::Cursor;
use std::path::Path;
use std::sync::Arc;

use linux_loader::configurator::pvh::PvhBootConfigurator;
use linux_loader::configurator::{BootConfigurator, BootParams};
use linux_loader::loader::KernelLoader;
use linux_loader::loader::elf::Elf;
use linux_loader::loader::elf::start_info::{
    hvm_memmap_table_entry, hvm_modlist_entry, hvm_start_info,
};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use crate::elf::{self, Segment};
use crate::error::{Error, Result};

/// Where the `hvm_start_info` goes (below the image, in the first MiB; as Firecracker).
pub const START_INFO: u64 = 0x6000;
/// Where the memory map goes.
pub const MEMMAP: u64 = 0x7000;
/// Where the command line goes.
pub const CMDLINE: u64 = 0x2_0000;
/// The longest command line (the kernel reads at most 2048 bytes).
pub const CMDLINE_MAX: usize = 2048;
/// The end of low memory: the legacy hole from here to 1 MiB is left out of the map.
pub const LOW_MEMORY_END: u64 = 0x9_fc00;
/// Where memory above the hole starts.
pub const HIGH_MEMORY: u64 = 0x10_0000;

const PVH_MAGIC: u32 = 0x336e_c578;
const E820_RAM: u32 = 1;
const E820_RESERVED: u32 = 2;

/// A PVH image read once, ready to be loaded into any number of VMs.
#[derive(Debug, Clone)]
pub struct Image {
    pub path: std::path::PathBuf,
    bytes: Arc<[u8]>,
    /// The 32-bit entry of the Xen PVH note.
    pub entry: u64,
    pub segments: Vec<Segment>,
    /// Whether the image starts the `irq` subsystem (its manifest says so): it then gets
    /// KVM's in-kernel interrupt controllers (local APIC, IOAPIC, PIC).
    pub interrupts: bool,
    /// How many CPUs the image runs on (its manifest's `cpus=N`, 1 without one).
    pub cpus: u16,
}

impl Image {
    /// Reads and checks the ELF at `path`; it needs a PVH note.
    pub fn open(path: &Path) -> Result<Image> {
        let bytes = elf::read(path)?;
        let info = elf::inspect(&bytes).map_err(|reason| elf::ValidateError::NotBootable {
            path: path.to_path_buf(),
            reason,
        })?;
        let entry = info
            .pvh_entry
            .ok_or_else(|| Error::NoPvhNote(path.to_path_buf()))?;
        Ok(Image {
            interrupts: info.declares("irq"),
            cpus: info.cpus(),
            path: path.to_path_buf(),
            bytes: bytes.into(),
            entry,
            segments: info.segments,
        })
    }

    /// Refuses, in one sentence, a VM of this image on several CPUs (`cpus`, else the
    /// image's count) where the monitor runs one vCPU: `what` (density, the gdb stub)
    /// names the user, `instead` what to do.
    pub fn require_one_cpu(
        &self,
        cpus: Option<u16>,
        what: &'static str,
        instead: &'static str,
    ) -> Result<()> {
        let cpus = cpus.unwrap_or(self.cpus);
        if cpus > 1 {
            return Err(Error::SeveralCpus {
                path: self.path.clone(),
                cpus,
                what,
                instead,
            });
        }
        Ok(())
    }

    /// The first byte past the highest segment.
    pub fn end(&self) -> u64 {
        self.segments.iter().map(Segment::end).max().unwrap_or(0)
    }

    /// Loads the segments into `mem`. `fresh` memory is known to be zero (a new anonymous
    /// mapping); otherwise the part of each segment past its file bytes (.bss) is zeroed
    /// here, since linux-loader copies file bytes only and skips segments without any.
    pub fn load(&self, mem: &GuestMemoryMmap, fresh: bool) -> Result<()> {
        let size = mem_size(mem);
        if let Some(segment) = self
            .segments
            .iter()
            .find(|s| s.end() > size || s.paddr < HIGH_MEMORY)
        {
            return Err(Error::SegmentDoesNotFit {
                path: self.path.clone(),
                start: segment.paddr,
                end: segment.end(),
                mib: size >> 20,
            });
        }
        Elf::load(mem, None, &mut Cursor::new(&self.bytes[..]), None).map_err(|err| {
            Error::GuestMemory {
                what: "the image",
                detail: err.to_string(),
            }
        })?;
        if !fresh {
            for segment in &self.segments {
                zero(
                    mem,
                    segment.paddr + segment.filesz,
                    segment.memsz - segment.filesz,
                )?;
            }
        }
        Ok(())
    }
}

/// The size of the (single-region) guest memory.
pub fn mem_size(mem: &GuestMemoryMmap) -> u64 {
    use vm_memory::{GuestMemoryBackend, GuestMemoryRegion};
    mem.iter().map(|region| region.len()).sum()
}

fn zero(mem: &GuestMemoryMmap, start: u64, len: u64) -> Result<()> {
    const CHUNK: [u8; 4096] = [0; 4096];
    let mut at = start;
    let end = start + len;
    while at < end {
        let n = (end - at).min(CHUNK.len() as u64) as usize;
        mem.write_slice(&CHUNK[..n], GuestAddress(at))
            .map_err(|err| Error::GuestMemory {
                what: "zeros over a segment's .bss",
                detail: err.to_string(),
            })?;
        at += n as u64;
    }
    Ok(())
}

/// The E820 memory map of a VM with `size` bytes: low memory, the legacy hole, the rest.
pub fn memory_map(size: u64) -> Vec<hvm_memmap_table_entry> {
    memory_map_with(size, None)
}

fn entry(addr: u64, size: u64, type_: u32) -> hvm_memmap_table_entry {
    hvm_memmap_table_entry {
        addr,
        size,
        type_,
        reserved: 0,
    }
}

/// As [`memory_map`]; a `module` (the initrd at the top of memory) changes nothing in it.
fn memory_map_with(size: u64, module: Option<Module>) -> Vec<hvm_memmap_table_entry> {
    let mut map = vec![
        entry(0, LOW_MEMORY_END, E820_RAM),
        entry(LOW_MEMORY_END, HIGH_MEMORY - LOW_MEMORY_END, E820_RESERVED),
    ];
    // The initrd's pages stay RAM in the map, as QEMU lists them: the module list says
    // where it is, and the kernel checks it lies in RAM and allocates around it.
    let _ = module;
    map.push(entry(
        HIGH_MEMORY,
        size.saturating_sub(HIGH_MEMORY),
        E820_RAM,
    ));
    map
}

/// A module (the initrd) in guest memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Module {
    pub addr: u64,
    pub size: u64,
}

/// Where the module's page-aligned copy goes: the top of memory, as Linux loaders put an
/// initrd; `None` if it would not leave `kernel_end` and 1 MiB of room free below it.
pub fn module_address(mem_size: u64, module_size: u64, kernel_end: u64) -> Option<u64> {
    let pages = module_size.checked_add(0xfff)? & !0xfff;
    let addr = mem_size.checked_sub(pages)?;
    (addr >= kernel_end.max(HIGH_MEMORY).checked_add(1 << 20)?).then_some(addr)
}

/// Copies the initrd at `path` into guest memory at the top (see [`module_address`]) and
/// returns where it is; `kernel_end` is the end of the loaded image.
pub fn load_module(mem: &GuestMemoryMmap, path: &Path, kernel_end: u64) -> Result<Module> {
    let bytes = std::fs::read(path).map_err(|err| Error::Initrd {
        path: path.to_path_buf(),
        detail: err.to_string(),
    })?;
    let size = bytes.len() as u64;
    let addr = module_address(mem_size(mem), size, kernel_end).ok_or_else(|| Error::Initrd {
        path: path.to_path_buf(),
        detail: format!(
            "{size} bytes do not fit in guest memory above the image (give the VM more --memory)"
        ),
    })?;
    mem.write_slice(&bytes, GuestAddress(addr))
        .map_err(|err| Error::GuestMemory {
            what: "the initrd",
            detail: err.to_string(),
        })?;
    Ok(Module { addr, size })
}

/// Where the module list goes (one entry, after the memory map's page).
pub const MODLIST: u64 = 0x8000;

/// Writes the command line, the memory map and the `hvm_start_info` (version 1) that
/// points at both; returns the start info's address (the vCPU's EBX).
pub fn write_start_info(mem: &GuestMemoryMmap, cmdline: &str) -> Result<u64> {
    write_start_info_with(mem, cmdline, None, None)
}

/// As [`write_start_info`], with `module` (the initrd) listed in the start info's module
/// list (`modlist_paddr`, `nr_modules` = 1); its pages stay RAM in the memory map; and
/// `rsdp` (the ACPI tables' root, see [`crate::acpi`]) as `rsdp_paddr`.
pub fn write_start_info_with(
    mem: &GuestMemoryMmap,
    cmdline: &str,
    module: Option<Module>,
    rsdp: Option<u64>,
) -> Result<u64> {
    if cmdline.len() > CMDLINE_MAX {
        return Err(Error::CommandLineTooLong {
            len: cmdline.len(),
            max: CMDLINE_MAX,
        });
    }
    let mut start_info = hvm_start_info {
        magic: PVH_MAGIC,
        version: 1,
        rsdp_paddr: rsdp.unwrap_or(0),
        ..Default::default()
    };
    if !cmdline.is_empty() {
        let mut bytes = cmdline.as_bytes().to_vec();
        bytes.push(0);
        mem.write_slice(&bytes, GuestAddress(CMDLINE))
            .map_err(|err| Error::GuestMemory {
                what: "the command line",
                detail: err.to_string(),
            })?;
        start_info.cmdline_paddr = CMDLINE;
    }
    let map = memory_map_with(mem_size(mem), module);
    start_info.memmap_paddr = MEMMAP;
    start_info.memmap_entries = map.len() as u32;
    if module.is_some() {
        start_info.modlist_paddr = MODLIST;
        start_info.nr_modules = 1;
    }
    let mut params = BootParams::new::<hvm_start_info>(&start_info, GuestAddress(START_INFO));
    params.set_sections::<hvm_memmap_table_entry>(&map, GuestAddress(MEMMAP));
    if let Some(module) = module {
        let list = [hvm_modlist_entry {
            paddr: module.addr,
            size: module.size,
            ..Default::default()
        }];
        params.set_modules::<hvm_modlist_entry>(&list, GuestAddress(MODLIST));
    }
    PvhBootConfigurator::write_bootparams::<GuestMemoryMmap>(&params, mem).map_err(|err| {
        Error::GuestMemory {
            what: "the PVH start info",
            detail: err.to_string(),
        }
    })?;
    Ok(START_INFO)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_memory_map_leaves_out_the_legacy_hole() {
        let map = memory_map(32 << 20);
        let entries: Vec<(u64, u64, u32)> = map.iter().map(|e| (e.addr, e.size, e.type_)).collect();
        assert_eq!(
            entries,
            [
                (0, 0x9_fc00, E820_RAM),
                (0x9_fc00, 0x6_0400, E820_RESERVED),
                (0x10_0000, (32 << 20) - 0x10_0000, E820_RAM),
            ]
        );
    }

    #[test]
    fn an_initrd_goes_to_the_top_of_memory_and_is_listed_as_a_module() {
        let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 8 << 20)]).unwrap();
        let mut file = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut file, &[0xab; 5000]).unwrap();
        let module = load_module(&mem, file.path(), 0x20_0000).unwrap();
        assert_eq!(
            module,
            Module {
                addr: (8 << 20) - 0x2000,
                size: 5000
            }
        );
        assert_eq!(
            mem.read_obj::<u8>(GuestAddress(module.addr + 4999))
                .unwrap(),
            0xab
        );
        let at = write_start_info_with(&mem, "", Some(module), Some(0xe_0000)).unwrap();
        let u32_at = |addr: u64| mem.read_obj::<u32>(GuestAddress(addr)).unwrap();
        let u64_at = |addr: u64| mem.read_obj::<u64>(GuestAddress(addr)).unwrap();
        // nr_modules at 12, modlist_paddr at 16 (xen/arch-x86/hvm/start_info.h).
        assert_eq!(u32_at(at + 12), 1);
        assert_eq!(u64_at(at + 16), MODLIST);
        assert_eq!((u64_at(MODLIST), u64_at(MODLIST + 8)), (module.addr, 5000));
        assert_eq!(u32_at(at + 48), 3, "three map entries");
        // rsdp_paddr at 32.
        assert_eq!(u64_at(at + 32), 0xe_0000);
        // The last entry: RAM from 1 MiB to the top, the module's pages included.
        let last = MEMMAP + 2 * 24;
        assert_eq!(
            (u64_at(last), u64_at(last + 8), u32_at(last + 16)),
            (0x10_0000, (8 << 20) - 0x10_0000, E820_RAM)
        );
        // Too big for the memory above the image: refused, not truncated.
        assert!(module_address(8 << 20, 7 << 20, 0x20_0000).is_none());
        assert!(module_address(8 << 20, u64::MAX, 0).is_none());
    }

    #[test]
    fn the_start_info_is_version_1_with_the_map_at_offset_40() {
        let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 4 << 20)]).unwrap();
        let at = write_start_info(&mem, "unikernel.idle -- a").unwrap();
        let u32_at = |addr: u64| mem.read_obj::<u32>(GuestAddress(addr)).unwrap();
        let u64_at = |addr: u64| mem.read_obj::<u64>(GuestAddress(addr)).unwrap();
        assert_eq!(u32_at(at), PVH_MAGIC);
        assert_eq!(u32_at(at + 4), 1);
        assert_eq!(u64_at(at + 24), CMDLINE);
        assert_eq!(u64_at(at + 40), MEMMAP);
        assert_eq!(u32_at(at + 48), 3);
        assert_eq!(u64_at(MEMMAP + 48), HIGH_MEMORY);
        let mut line = [0u8; 20];
        mem.read_slice(&mut line, GuestAddress(CMDLINE)).unwrap();
        assert_eq!(&line, b"unikernel.idle -- a\0");
        assert!(write_start_info(&mem, &"x".repeat(CMDLINE_MAX + 1)).is_err());
    }

    #[test]
    fn reused_memory_gets_its_bss_zeroed() {
        let path = std::env::temp_dir().join(format!("vmm-bss-{}.elf", std::process::id()));
        std::fs::write(
            &path,
            crate::elf::test_image(&[(HIGH_MEMORY, 0x100, 0x3000)], Some(0x10_0000)),
        )
        .unwrap();
        let image = Image::open(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 4 << 20)]).unwrap();
        // Dirty the whole image range, as a previous guest would have.
        let junk = vec![0xa5u8; (image.end() - HIGH_MEMORY) as usize];
        mem.write_slice(&junk, GuestAddress(HIGH_MEMORY)).unwrap();
        image.load(&mem, false).unwrap();
        for segment in &image.segments {
            let mut tail = vec![0u8; (segment.memsz - segment.filesz) as usize];
            mem.read_slice(&mut tail, GuestAddress(segment.paddr + segment.filesz))
                .unwrap();
            assert!(tail.iter().all(|&b| b == 0), "{segment:?}");
        }
        assert!(
            image.segments.iter().any(|s| s.memsz > s.filesz),
            "the test image has a .bss: {:?}",
            image.segments
        );
    }
}
