//! What the loader tells the kernel: the memory map and the command line.
//!
//! Both boot protocols are read into one [`BootInfo`] that owns its data, so nothing the
//! loader left in low memory has to stay mapped after boot.

use crate::cmdline::KernelFlags;
use core::fmt;

/// How the kernel was entered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Loader {
    /// Xen PVH direct boot (QEMU `-kernel`, Firecracker, Cloud Hypervisor, our monitor).
    Pvh,
    /// Multiboot (GRUB and other multiboot loaders).
    Multiboot,
}

/// A range of guest-physical memory from the loader's memory map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryRegion {
    pub start: u64,
    pub end: u64,
    pub usable: bool,
}

impl MemoryRegion {
    const EMPTY: Self = Self {
        start: 0,
        end: 0,
        usable: false,
    };
}

/// The most memory-map entries kept; loaders report a handful.
pub const MAX_REGIONS: usize = 32;
/// The longest kernel command line accepted.
pub const MAX_CMDLINE: usize = 2048;

/// The boot information, copied out of the loader's structures.
pub struct BootInfo {
    loader: Loader,
    regions: [MemoryRegion; MAX_REGIONS],
    region_count: usize,
    cmdline: [u8; MAX_CMDLINE],
    /// The command line is `cmdline[cmdline_start..cmdline_len]`, UTF-8.
    cmdline_start: usize,
    cmdline_len: usize,
    /// The first boot module (the initrd): guest-physical start and length (0: none).
    initrd_start: u64,
    initrd_len: u64,
}

impl fmt::Debug for BootInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BootInfo")
            .field("loader", &self.loader)
            .field("regions", &self.regions())
            .field("cmdline", &self.cmdline())
            .finish()
    }
}

/// Why the loader's boot information could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BootInfoError {
    BadPvhMagic(u32),
    NoMemoryMap,
    TooManyRegions(usize),
    CmdlineTooLong,
    CmdlineNotUtf8,
}

impl fmt::Display for BootInfoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            // As a u64: the image then holds one hexadecimal formatter, the fault report's.
            Self::BadPvhMagic(magic) => {
                write!(
                    f,
                    "the PVH start info has magic {:#x}, expected 0x336ec578",
                    u64::from(magic)
                )
            }
            Self::NoMemoryMap => f.write_str("the loader passed no memory map"),
            Self::TooManyRegions(n) => {
                write!(
                    f,
                    "the memory map has {n} entries; at most {MAX_REGIONS} are supported"
                )
            }
            Self::CmdlineTooLong => {
                write!(
                    f,
                    "the kernel command line is longer than {MAX_CMDLINE} bytes"
                )
            }
            Self::CmdlineNotUtf8 => f.write_str("the kernel command line is not UTF-8"),
        }
    }
}

/// Reads guest-physical memory; the kernel reads it directly, host tests from a buffer.
pub trait PhysRead {
    fn read_u8(&self, addr: u64) -> u8;

    fn read_u32(&self, addr: u64) -> u32 {
        u32::from_le_bytes(core::array::from_fn(|i| self.read_u8(addr + i as u64)))
    }

    fn read_u64(&self, addr: u64) -> u64 {
        u64::from_le_bytes(core::array::from_fn(|i| self.read_u8(addr + i as u64)))
    }
}

const PVH_MAGIC: u32 = 0x336e_c578;
const MULTIBOOT_FLAG_CMDLINE: u32 = 1 << 2;
const MULTIBOOT_FLAG_MMAP: u32 = 1 << 6;
const E820_RAM: u32 = 1;

impl BootInfo {
    const fn empty(loader: Loader) -> Self {
        Self {
            loader,
            regions: [MemoryRegion::EMPTY; MAX_REGIONS],
            region_count: 0,
            cmdline: [0; MAX_CMDLINE],
            cmdline_start: 0,
            cmdline_len: 0,
            initrd_start: 0,
            initrd_len: 0,
        }
    }

    /// Reads a PVH `hvm_start_info` (version 1: it carries the memory map).
    pub fn from_pvh(mem: &impl PhysRead, start_info: u64) -> Result<Self, BootInfoError> {
        let mut info = Self::empty(Loader::Pvh);
        info.read_pvh(mem, start_info)?;
        Ok(info)
    }

    /// Reads a multiboot (version 1) information structure.
    pub fn from_multiboot(mem: &impl PhysRead, mbi: u64) -> Result<Self, BootInfoError> {
        let mut info = Self::empty(Loader::Multiboot);
        info.read_multiboot(mem, mbi)?;
        Ok(info)
    }

    /// `from_pvh` into an empty `self`: the kernel fills its static in place, which saves
    /// building and copying a 2.6 KiB value on a path where every instruction may be emulated.
    pub fn read_pvh(&mut self, mem: &impl PhysRead, start_info: u64) -> Result<(), BootInfoError> {
        let magic = mem.read_u32(start_info);
        if magic != PVH_MAGIC {
            return Err(BootInfoError::BadPvhMagic(magic));
        }
        self.loader = Loader::Pvh;
        self.read_cmdline(mem, mem.read_u64(start_info + 24))?;
        // The module list (QEMU's `-initrd`): 32-byte entries, address then size.
        if mem.read_u32(start_info + 12) != 0 {
            let module = mem.read_u64(start_info + 16);
            self.initrd_start = mem.read_u64(module);
            self.initrd_len = mem.read_u64(module + 8);
        }
        let version = mem.read_u32(start_info + 4);
        let memmap = mem.read_u64(start_info + 40);
        let entries = mem.read_u32(start_info + 48) as usize;
        if version < 1 || memmap == 0 || entries == 0 {
            return Err(BootInfoError::NoMemoryMap);
        }
        for i in 0..entries {
            let entry = memmap + 24 * i as u64;
            let start = mem.read_u64(entry);
            let size = mem.read_u64(entry + 8);
            self.push_region(start, size, mem.read_u32(entry + 16) == E820_RAM, entries)?;
        }
        Ok(())
    }

    /// `from_multiboot` into an empty `self`.
    pub fn read_multiboot(&mut self, mem: &impl PhysRead, mbi: u64) -> Result<(), BootInfoError> {
        let flags = mem.read_u32(mbi);
        self.loader = Loader::Multiboot;
        if flags & MULTIBOOT_FLAG_CMDLINE != 0 {
            self.read_cmdline(mem, mem.read_u32(mbi + 16).into())?;
            self.drop_first_word();
        }
        if flags & MULTIBOOT_FLAG_MMAP == 0 {
            return Err(BootInfoError::NoMemoryMap);
        }
        let length = u64::from(mem.read_u32(mbi + 44));
        let first = u64::from(mem.read_u32(mbi + 48));
        let mut entry = first;
        while entry < first + length {
            // Each entry starts with its own size, which does not count itself.
            let size = u64::from(mem.read_u32(entry));
            let start = mem.read_u64(entry + 4);
            let len = mem.read_u64(entry + 12);
            let usable = mem.read_u32(entry + 20) == E820_RAM;
            self.push_region(start, len, usable, self.region_count + 1)?;
            entry += size + 4;
        }
        Ok(())
    }

    fn push_region(
        &mut self,
        start: u64,
        size: u64,
        usable: bool,
        total: usize,
    ) -> Result<(), BootInfoError> {
        let Some(slot) = self.regions.get_mut(self.region_count) else {
            return Err(BootInfoError::TooManyRegions(total.max(MAX_REGIONS + 1)));
        };
        if size > 0 {
            let end = start.saturating_add(size);
            *slot = MemoryRegion { start, end, usable };
            self.region_count += 1;
        }
        Ok(())
    }

    fn read_cmdline(&mut self, mem: &impl PhysRead, addr: u64) -> Result<(), BootInfoError> {
        if addr == 0 {
            return Ok(());
        }
        // Eight bytes a step, finding the terminating NUL with a word trick: the boot path
        // reads the whole line, and each of its instructions may be emulated. Reads up to
        // seven bytes past the NUL, which loaders leave well inside mapped memory.
        const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
        const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
        let mut len = 0;
        loop {
            let word = mem.read_u64(addr + len as u64);
            let zeros = word.wrapping_sub(ONES) & !word & HIGHS;
            let bytes = if zeros == 0 {
                8
            } else {
                zeros.trailing_zeros() as usize / 8
            };
            if len + bytes > MAX_CMDLINE {
                return Err(BootInfoError::CmdlineTooLong);
            }
            // The whole word where it fits (one store; what follows the NUL is ignored).
            match self.cmdline.get_mut(len..len + 8) {
                Some(slot) => slot.copy_from_slice(&word.to_le_bytes()),
                None => {
                    self.cmdline[len..len + bytes].copy_from_slice(&word.to_le_bytes()[..bytes])
                }
            }
            len += bytes;
            if bytes < 8 {
                break;
            }
        }
        let line = self.cmdline.get(..len).unwrap_or_default();
        core::str::from_utf8(line).map_err(|_| BootInfoError::CmdlineNotUtf8)?;
        self.cmdline_len = len;
        Ok(())
    }

    /// Multiboot loaders (GRUB, QEMU) put the kernel's own path first on the command line,
    /// where PVH loaders put only the arguments.
    fn drop_first_word(&mut self) {
        let line = self.cmdline_bytes();
        let rest = line
            .trim_ascii_start()
            .splitn(2, u8::is_ascii_whitespace)
            .nth(1)
            .unwrap_or_default()
            .trim_ascii_start();
        // `rest` ends where the line does, after ASCII whitespace or at the end: a
        // character boundary.
        self.cmdline_start = self.cmdline_len - rest.len();
    }

    /// The command line's bytes (UTF-8, checked by `read_cmdline`).
    fn cmdline_bytes(&self) -> &[u8] {
        self.cmdline
            .get(self.cmdline_start..self.cmdline_len)
            .unwrap_or_default()
    }

    pub fn loader(&self) -> Loader {
        self.loader
    }

    /// The memory map as the loader gave it.
    pub fn regions(&self) -> &[MemoryRegion] {
        self.regions.get(..self.region_count).unwrap_or_default()
    }

    /// The initrd the loader placed in memory (the first module of PVH's module list):
    /// guest-physical start and length, as the loader reported them (not checked against
    /// the memory map). Multiboot's modules are not read: the runner and the monitor boot
    /// through PVH, and every instruction of the boot path counts.
    pub fn initrd(&self) -> Option<(u64, u64)> {
        (self.initrd_len > 0).then_some((self.initrd_start, self.initrd_len))
    }

    /// The whole kernel command line.
    pub fn cmdline(&self) -> &str {
        // SAFETY: `read_cmdline` checked the whole line to be UTF-8, and `drop_first_word`
        // cuts it after ASCII whitespace; the empty line is UTF-8 too.
        unsafe { core::str::from_utf8_unchecked(self.cmdline_bytes()) }
    }

    /// The kernel flags of the command line.
    pub fn flags(&self) -> KernelFlags<'_> {
        KernelFlags::parse(self.cmdline())
    }

    /// Whether the command line carries the bare kernel flag `unikernel.<name>`.
    pub fn has_flag(&self, name: &str) -> bool {
        self.flags().has(name)
    }
}

/// Written once by the boot path before any other code runs, read-only after.
#[cfg(target_os = "none")]
static mut INFO: BootInfo = BootInfo::empty(Loader::Pvh);

/// The boot information. Complete before the first line of generated code runs.
#[cfg(target_os = "none")]
pub fn info() -> &'static BootInfo {
    let info = &raw const INFO;
    // SAFETY: INFO is written only through `info_mut`, before any caller of `info` runs.
    unsafe { &*info }
}

/// The boot information, to be filled in.
///
/// # Safety
/// Call once, on the boot CPU, before anything calls [`info`], and drop the reference
/// before anything does.
#[cfg(target_os = "none")]
pub(crate) unsafe fn info_mut() -> &'static mut BootInfo {
    let info = &raw mut INFO;
    // SAFETY: the caller guarantees no other reference to INFO exists.
    unsafe { &mut *info }
}

/// Host builds have no loader: an empty command line and no memory.
#[cfg(not(target_os = "none"))]
pub fn info() -> &'static BootInfo {
    static HOST: BootInfo = BootInfo::empty(Loader::Pvh);
    &HOST
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A little guest-physical memory, starting at address 0.
    struct Memory(std::vec::Vec<u8>);

    extern crate std;

    impl Memory {
        fn new() -> Self {
            Self(std::vec![0; 0x4000])
        }
        fn put(&mut self, addr: u64, bytes: &[u8]) {
            self.0[addr as usize..addr as usize + bytes.len()].copy_from_slice(bytes);
        }
        fn put_u32(&mut self, addr: u64, v: u32) {
            self.put(addr, &v.to_le_bytes());
        }
        fn put_u64(&mut self, addr: u64, v: u64) {
            self.put(addr, &v.to_le_bytes());
        }
    }

    impl PhysRead for Memory {
        fn read_u8(&self, addr: u64) -> u8 {
            self.0[addr as usize]
        }
    }

    /// The layout QEMU's PVH loader produces for `-m 32 -append "a -- b"`.
    fn pvh_memory() -> Memory {
        let mut m = Memory::new();
        m.put_u32(0x1000, PVH_MAGIC);
        m.put_u32(0x1004, 1);
        m.put_u64(0x1000 + 24, 0x2000);
        m.put_u64(0x1000 + 40, 0x3000);
        m.put_u32(0x1000 + 48, 2);
        m.put(0x2000, b"unikernel.timeline -- b\0");
        m.put_u64(0x3000, 0);
        m.put_u64(0x3008, 0x9fc00);
        m.put_u32(0x3010, 1);
        m.put_u64(0x3018, 0x100000);
        m.put_u64(0x3020, 0x1f00000);
        m.put_u32(0x3028, 1);
        m
    }

    #[test]
    fn reads_pvh_start_info() {
        let info = BootInfo::from_pvh(&pvh_memory(), 0x1000).unwrap();
        assert_eq!(info.loader(), Loader::Pvh);
        assert_eq!(info.cmdline(), "unikernel.timeline -- b");
        assert!(info.has_flag("timeline"));
        assert!(!info.has_flag("b"));
        assert_eq!(
            info.regions(),
            &[
                MemoryRegion {
                    start: 0,
                    end: 0x9fc00,
                    usable: true
                },
                MemoryRegion {
                    start: 0x100000,
                    end: 0x2000000,
                    usable: true
                },
            ]
        );
    }

    #[test]
    fn reads_the_initrd_from_the_pvh_module_list() {
        let mut m = pvh_memory();
        assert_eq!(BootInfo::from_pvh(&m, 0x1000).unwrap().initrd(), None);
        m.put_u32(0x1000 + 12, 1);
        m.put_u64(0x1000 + 16, 0x3800);
        m.put_u64(0x3800, 0x1e00000);
        m.put_u64(0x3808, 0x1234);
        let info = BootInfo::from_pvh(&m, 0x1000).unwrap();
        assert_eq!(info.initrd(), Some((0x1e00000, 0x1234)));
        // An empty module is no initrd.
        m.put_u64(0x3808, 0);
        assert_eq!(BootInfo::from_pvh(&m, 0x1000).unwrap().initrd(), None);
    }

    #[test]
    fn reads_command_lines_of_every_length() {
        let text = b"unikernel.log=debug -- a b";
        for len in 0..=text.len() {
            let mut m = pvh_memory();
            m.put(0x2000, &[0xff; 64]);
            m.put(0x2000, &text[..len]);
            m.put(0x2000 + len as u64, b"\0");
            let info = BootInfo::from_pvh(&m, 0x1000).unwrap();
            assert_eq!(info.cmdline().as_bytes(), &text[..len]);
        }
    }

    #[test]
    fn accepts_the_longest_command_line() {
        let mut m = Memory(std::vec![b'x'; 0x8000]);
        m.put_u32(0x1000, PVH_MAGIC);
        m.put_u32(0x1004, 1);
        m.put(0x1000 + 8, &[0; 16]);
        m.put_u64(0x1000 + 24, 0x2000);
        m.put_u64(0x1000 + 40, 0x7000);
        m.put_u32(0x1000 + 48, 1);
        m.put(0x7000, &[0; 24]);
        m.put_u64(0x7008, 0x1000);
        m.put_u32(0x7010, 1);
        m.put(0x2000 + MAX_CMDLINE as u64, b"\0");
        let info = BootInfo::from_pvh(&m, 0x1000).unwrap();
        assert_eq!(info.cmdline().len(), MAX_CMDLINE);
        m.put(0x2000 + MAX_CMDLINE as u64, b"y\0");
        assert_eq!(
            BootInfo::from_pvh(&m, 0x1000).unwrap_err(),
            BootInfoError::CmdlineTooLong
        );
    }

    #[test]
    fn rejects_bad_pvh_magic() {
        let mut m = pvh_memory();
        m.put_u32(0x1000, 0xdead);
        assert_eq!(
            BootInfo::from_pvh(&m, 0x1000).unwrap_err(),
            BootInfoError::BadPvhMagic(0xdead)
        );
    }

    #[test]
    fn pvh_version_0_has_no_memory_map() {
        let mut m = pvh_memory();
        m.put_u32(0x1004, 0);
        assert_eq!(
            BootInfo::from_pvh(&m, 0x1000).unwrap_err(),
            BootInfoError::NoMemoryMap
        );
    }

    #[test]
    fn rejects_overlong_command_line() {
        let mut m = Memory(std::vec![b'x'; 0x8000]);
        m.put_u32(0x1000, PVH_MAGIC);
        m.put_u64(0x1000 + 24, 0x2000);
        assert_eq!(
            BootInfo::from_pvh(&m, 0x1000).unwrap_err(),
            BootInfoError::CmdlineTooLong
        );
    }

    #[test]
    fn reads_multiboot_info() {
        let mut m = Memory::new();
        m.put_u32(0x1000, MULTIBOOT_FLAG_CMDLINE | MULTIBOOT_FLAG_MMAP);
        m.put_u32(0x1000 + 16, 0x2000);
        m.put(0x2000, b"/boot/app.elf  hello -- a\0");
        m.put_u32(0x1000 + 44, 48);
        m.put_u32(0x1000 + 48, 0x3000);
        for (i, (start, len, kind)) in [(0u64, 0x9fc00u64, 1u32), (0x100000, 0x700000, 2)]
            .iter()
            .enumerate()
        {
            let e = 0x3000 + 24 * i as u64;
            m.put_u32(e, 20);
            m.put_u64(e + 4, *start);
            m.put_u64(e + 12, *len);
            m.put_u32(e + 20, *kind);
        }
        let info = BootInfo::from_multiboot(&m, 0x1000).unwrap();
        assert_eq!(info.loader(), Loader::Multiboot);
        assert_eq!(
            info.cmdline(),
            "hello -- a",
            "the kernel's path is not an argument"
        );
        assert_eq!(info.regions().len(), 2);
        assert!(!info.regions()[1].usable);
    }

    #[test]
    fn multiboot_without_memory_map_is_an_error() {
        let mut m = Memory::new();
        m.put_u32(0x1000, 0);
        assert_eq!(
            BootInfo::from_multiboot(&m, 0x1000).unwrap_err(),
            BootInfoError::NoMemoryMap
        );
    }
}
