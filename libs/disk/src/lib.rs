//! A writable disk: a virtio-blk device (virtio-mmio or PCI) holding a FAT file system,
//! with files shaped like `std::fs`'s.
//!
//! ```ignore
//! let mut log = OpenOptions::new().append(true).create(true).open(&disk, "/data/log")?;
//! log.write_all(b"record")?;
//! log.sync_all()?;                       // the data, the size, then a device flush
//! disk.rename("/data/new", "/data/current")?;
//! ```
//!
//! The file system is `hadris-fat` (FAT12/16/32 with long names) over the device; images
//! are plain FAT, so host tools read and write them too (`cargo uk disk create` makes one
//! with `fatfs`). A write is durable once [`File::sync_all`] (or [`Disk::sync`]) returns:
//! that writes the file's clusters, its directory entry and the FAT, then asks the device
//! to flush its cache (virtio-blk's flush request, an fdatasync of the image on the host).
//!
//! Reads and writes wait for the device's interrupt (the thread blocks under a scheduler,
//! else the CPU halts); where the line cannot be routed, and for flushes, the queue is
//! polled.
#![no_std]
#![deny(unsafe_code)]

extern crate alloc;

mod block;
#[doc(hidden)]
pub mod conformance;
#[cfg(target_os = "none")]
#[allow(unsafe_code)]
mod device;

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

pub use block::BlockDev;
pub use embedded_io::{Read, Seek, SeekFrom, Write};
use hadris_fat::async_::FatFs;
use hadris_fs::async_::Volume;
use hadris_fs::{ErrorKind as FsKind, MountOptions};

type Fat = FatFs<BlockDev>;

/// Why a disk operation failed: the kind (named as `std::io::ErrorKind`'s) and what the
/// file system said.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    message: &'static str,
}

/// The kinds of [`Error`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    NotFound,
    AlreadyExists,
    NotADirectory,
    IsADirectory,
    DirectoryNotEmpty,
    /// The disk is full (`StorageFull` in std).
    StorageFull,
    ReadOnlyFilesystem,
    InvalidInput,
    InvalidData,
    FileTooLarge,
    /// A file that is open cannot be removed (`ResourceBusy`).
    ResourceBusy,
    Unsupported,
    /// The device failed.
    Other,
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    fn from_fs<E>(error: &hadris_fs::Error<E>) -> Self {
        Self {
            kind: kind_of(error.kind()),
            message: error.message(),
        }
    }

    const fn new(kind: ErrorKind, message: &'static str) -> Self {
        Self { kind, message }
    }
}

fn kind_of(kind: FsKind) -> ErrorKind {
    match kind {
        FsKind::NotFound => ErrorKind::NotFound,
        FsKind::AlreadyExists => ErrorKind::AlreadyExists,
        FsKind::NotADirectory => ErrorKind::NotADirectory,
        FsKind::IsADirectory => ErrorKind::IsADirectory,
        FsKind::DirectoryNotEmpty => ErrorKind::DirectoryNotEmpty,
        FsKind::NoSpace => ErrorKind::StorageFull,
        FsKind::ReadOnly => ErrorKind::ReadOnlyFilesystem,
        FsKind::InvalidInput | FsKind::NameTooLong | FsKind::LimitExceeded => {
            ErrorKind::InvalidInput
        }
        FsKind::Corrupt | FsKind::NotRecognized => ErrorKind::InvalidData,
        FsKind::FileTooLarge => ErrorKind::FileTooLarge,
        FsKind::Busy => ErrorKind::ResourceBusy,
        FsKind::Unsupported => ErrorKind::Unsupported,
        _ => ErrorKind::Other,
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            ErrorKind::NotFound => "not found",
            ErrorKind::AlreadyExists => "already exists",
            ErrorKind::NotADirectory => "not a directory",
            ErrorKind::IsADirectory => "is a directory",
            ErrorKind::DirectoryNotEmpty => "directory not empty",
            ErrorKind::StorageFull => "the disk is full",
            ErrorKind::ReadOnlyFilesystem => "read-only disk",
            ErrorKind::InvalidInput => "invalid input",
            ErrorKind::InvalidData => "corrupt file system",
            ErrorKind::FileTooLarge => "file too large",
            ErrorKind::ResourceBusy => "the file is open",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::Other => "device error",
        };
        if self.message.is_empty() {
            f.write_str(kind)
        } else {
            write!(f, "{kind} ({})", self.message)
        }
    }
}

impl core::error::Error for Error {}

impl embedded_io::Error for Error {
    fn kind(&self) -> embedded_io::ErrorKind {
        use embedded_io::ErrorKind as Io;
        match self.kind {
            ErrorKind::NotFound => Io::NotFound,
            ErrorKind::AlreadyExists => Io::AlreadyExists,
            ErrorKind::InvalidInput => Io::InvalidInput,
            ErrorKind::InvalidData => Io::InvalidData,
            ErrorKind::StorageFull => Io::OutOfMemory,
            ErrorKind::Unsupported => Io::Unsupported,
            _ => Io::Other,
        }
    }
}

type Result<T> = core::result::Result<T, Error>;

/// Why the disk could not start.
#[derive(Debug)]
pub enum InitError {
    /// The VMM attached no virtio-blk device.
    NoDevice,
    /// The device did not start.
    Device(&'static str),
    /// The device holds no FAT file system, or a corrupt one.
    Mount(Error),
}

impl fmt::Display for InitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoDevice => f.write_str(
                "no virtio-blk device; attach an image with `cargo uk run <app> --disk data.img` (`cargo uk disk create data.img` makes one)",
            ),
            Self::Device(reason) => write!(f, "the virtio-blk device did not start: {reason}"),
            Self::Mount(error) => write!(
                f,
                "the disk holds no usable FAT file system: {error}; make one with `cargo uk disk create`"
            ),
        }
    }
}

/// The disk: a handle `main` takes, cheap to clone.
#[derive(Clone)]
pub struct Disk {
    volume: Volume<Fat>,
}

impl fmt::Debug for Disk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Disk").finish_non_exhaustive()
    }
}

/// Finds the virtio-blk device (on the command line's virtio-mmio windows, on PCI, or by
/// probing microvm's windows), routes its interrupt with `route_irq(line, level, handler)`
/// (GSI or ISA IRQ, level-triggered or not; false: requests poll) and mounts its FAT file
/// system.
pub fn init(
    cmdline: &str,
    route_irq: impl FnOnce(u32, bool, fn()) -> bool,
) -> core::result::Result<Disk, InitError> {
    #[cfg(target_os = "none")]
    {
        let device = device::open(cmdline, route_irq)?;
        Disk::mount(device)
    }
    #[cfg(not(target_os = "none"))]
    {
        let _ = (cmdline, route_irq);
        Err(InitError::NoDevice)
    }
}

/// How many interrupts the disk's device raised (0 when it is polled).
pub fn interrupts() -> u64 {
    #[cfg(target_os = "none")]
    return device::interrupts();
    #[cfg(not(target_os = "none"))]
    0
}

/// An entry's kind and size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Metadata {
    is_dir: bool,
    len: u64,
}

impl Metadata {
    fn of(metadata: &hadris_fs::Metadata) -> Self {
        Self {
            is_dir: metadata.file_type() == hadris_fs::FileType::Dir,
            len: metadata.len(),
        }
    }
    pub fn is_dir(&self) -> bool {
        self.is_dir
    }
    pub fn is_file(&self) -> bool {
        !self.is_dir
    }
    pub fn len(&self) -> u64 {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// One entry of a directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    name: String,
    is_dir: bool,
}

impl DirEntry {
    pub fn file_name(&self) -> &str {
        &self.name
    }
    pub fn is_dir(&self) -> bool {
        self.is_dir
    }
}

impl Disk {
    /// Mounts the FAT file system on `device`; a device without one is an error naming
    /// what was found, never a fault.
    pub fn mount(device: BlockDev) -> core::result::Result<Self, InitError> {
        match block_on(FatFs::mount(device, MountOptions::new())) {
            Ok(fat) => Ok(Self {
                volume: Volume::new(fat),
            }),
            Err(error) => Err(InitError::Mount(Error::from_fs(error.error()))),
        }
    }

    /// The file's contents (`std::fs::read`).
    pub fn read(&self, path: &str) -> Result<Vec<u8>> {
        block_on(self.volume.read(path)).map_err(|e| Error::from_fs(&e))
    }

    /// The file as text (`std::fs::read_to_string`).
    pub fn read_to_string(&self, path: &str) -> Result<String> {
        String::from_utf8(self.read(path)?)
            .map_err(|_| Error::new(ErrorKind::InvalidData, "not UTF-8"))
    }

    /// Creates or replaces the file with `contents` (`std::fs::write`: not synced).
    pub fn write(&self, path: &str, contents: &[u8]) -> Result<()> {
        block_on(self.volume.write(path, contents)).map_err(|e| Error::from_fs(&e))
    }

    pub fn metadata(&self, path: &str) -> Result<Metadata> {
        block_on(self.volume.metadata(path))
            .map(|m| Metadata::of(&m))
            .map_err(|e| Error::from_fs(&e))
    }

    pub fn exists(&self, path: &str) -> bool {
        block_on(self.volume.exists(path)).unwrap_or(false)
    }

    /// The entries of a directory, without `.` and `..`, sorted by name.
    pub fn read_dir(&self, path: &str) -> Result<Vec<DirEntry>> {
        let mut entries = Vec::new();
        let mut dir = block_on(self.volume.read_dir(path)).map_err(|e| Error::from_fs(&e))?;
        while let Some(entry) = block_on(dir.next_entry()) {
            let entry = entry.map_err(|e| Error::from_fs(&e))?;
            let name = entry.name().to_str().unwrap_or("\u{fffd}");
            if name == "." || name == ".." {
                continue;
            }
            entries.push(DirEntry {
                name: String::from(name),
                is_dir: entry.file_type() == hadris_fs::FileType::Dir,
            });
        }
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(entries)
    }

    pub fn create_dir(&self, path: &str) -> Result<()> {
        block_on(self.volume.create_dir(path)).map_err(|e| Error::from_fs(&e))
    }

    pub fn create_dir_all(&self, path: &str) -> Result<()> {
        block_on(self.volume.create_dir_all(path)).map_err(|e| Error::from_fs(&e))
    }

    pub fn remove_file(&self, path: &str) -> Result<()> {
        block_on(self.volume.remove_file(path)).map_err(|e| Error::from_fs(&e))
    }

    pub fn remove_dir(&self, path: &str) -> Result<()> {
        block_on(self.volume.remove_dir(path)).map_err(|e| Error::from_fs(&e))
    }

    /// Renames `from` to `to`, replacing a file at `to` as std does on Unix.
    pub fn rename(&self, from: &str, to: &str) -> Result<()> {
        match block_on(self.volume.rename(from, to)) {
            Err(e) if e.kind() == FsKind::AlreadyExists => {
                self.remove_file(to)?;
                block_on(self.volume.rename(from, to)).map_err(|e| Error::from_fs(&e))
            }
            other => other.map_err(|e| Error::from_fs(&e)),
        }
    }

    /// Syncs and unmounts, giving the device back; `None` while a clone of this handle or
    /// an open file still uses the volume.
    pub fn unmount(self) -> Option<core::result::Result<BlockDev, Error>> {
        let fat = block_on(self.volume.into_inner()).ok()?;
        Some(block_on(fat.unmount()).map_err(|error| Error::from_fs(error.error())))
    }

    /// Writes everything cached to the device and flushes it.
    pub fn sync(&self) -> Result<()> {
        let mut fat = block_on(self.volume.lock()).map_err(|e| Error::from_fs(&e))?;
        block_on(fat.sync()).map_err(|e| Error::from_fs(&e))
    }
}

/// How to open a file (`std::fs::OpenOptions`).
#[derive(Clone, Copy, Debug, Default)]
pub struct OpenOptions {
    read: bool,
    write: bool,
    append: bool,
    truncate: bool,
    create: bool,
    create_new: bool,
}

impl OpenOptions {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn read(&mut self, on: bool) -> &mut Self {
        self.read = on;
        self
    }
    pub fn write(&mut self, on: bool) -> &mut Self {
        self.write = on;
        self
    }
    /// Writes go to the end (and imply `write`).
    pub fn append(&mut self, on: bool) -> &mut Self {
        self.append = on;
        self
    }
    pub fn truncate(&mut self, on: bool) -> &mut Self {
        self.truncate = on;
        self
    }
    pub fn create(&mut self, on: bool) -> &mut Self {
        self.create = on;
        self
    }
    pub fn create_new(&mut self, on: bool) -> &mut Self {
        self.create_new = on;
        self
    }

    pub fn open(&self, disk: &Disk, path: &str) -> Result<File> {
        let mut options = hadris_fs::OpenOptions::new();
        if self.read {
            options = options.read();
        }
        if self.write || self.append {
            options = options.write();
        }
        if self.append {
            options = options.append();
        }
        if self.truncate {
            options = options.truncate();
        }
        if self.create {
            options = options.create();
        }
        if self.create_new {
            options = options.create_new();
        }
        block_on(disk.volume.open(path, options))
            .map(|inner| File { inner })
            .map_err(|e| Error::from_fs(&e))
    }
}

/// An open file of the disk.
pub struct File {
    inner: hadris_fs::async_::File<Fat>,
}

impl fmt::Debug for File {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("File").finish_non_exhaustive()
    }
}

impl File {
    /// Opens a file for reading (`std::fs::File::open`).
    pub fn open(disk: &Disk, path: &str) -> Result<File> {
        OpenOptions::new().read(true).open(disk, path)
    }

    /// Creates a file, or empties an existing one, for writing (`std::fs::File::create`).
    pub fn create(disk: &Disk, path: &str) -> Result<File> {
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(disk, path)
    }

    /// Makes everything written so far durable: the file's data and size, the FAT, then a
    /// device flush. A write acknowledged after this returns survives a crash.
    pub fn sync_all(&self) -> Result<()> {
        block_on(self.inner.sync_all()).map_err(|e| Error::from_fs(&e))
    }

    pub fn set_len(&mut self, len: u64) -> Result<()> {
        block_on(self.inner.set_len(len)).map_err(|e| Error::from_fs(&e))
    }

    pub fn metadata(&self) -> Result<Metadata> {
        block_on(self.inner.metadata())
            .map(|m| Metadata::of(&m))
            .map_err(|e| Error::from_fs(&e))
    }
}

impl embedded_io::ErrorType for File {
    type Error = Error;
}

impl Read for File {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize> {
        block_on(self.inner.read(buf)).map_err(|e| Error::from_fs(&e))
    }
}

impl Write for File {
    fn write(&mut self, buf: &[u8]) -> Result<usize> {
        block_on(self.inner.write(buf)).map_err(|e| Error::from_fs(&e))
    }

    fn flush(&mut self) -> Result<()> {
        Ok(())
    }
}

impl Seek for File {
    fn seek(&mut self, pos: SeekFrom) -> Result<u64> {
        let pos = match pos {
            SeekFrom::Start(at) => hadris_io::SeekFrom::Start(at),
            SeekFrom::End(offset) => hadris_io::SeekFrom::End(offset),
            SeekFrom::Current(offset) => hadris_io::SeekFrom::Current(offset),
        };
        block_on(self.inner.seek(pos)).map_err(|e| Error::from_fs(&e))
    }
}

/// Runs one of the file system's futures to its end. The device completes each request
/// before its call returns, so a future is only pending while another thread holds the
/// volume's lock: then the others run (`wait::relax`, a yield under a scheduler) until it
/// is free.
fn block_on<F: core::future::Future>(future: F) -> F::Output {
    let mut future = core::pin::pin!(future);
    let mut context = core::task::Context::from_waker(core::task::Waker::noop());
    loop {
        if let core::task::Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
        unikernel_arch::wait::relax();
    }
}

#[cfg(test)]
mod tests;
