//! Read-only files from a newc cpio initrd, with an API shaped like `std::fs`.
//!
//! The VMM loads the archive into guest memory (QEMU's `-initrd`, the PVH module list);
//! [`init`] checks it once and indexes its entries by path. Files are then served from the
//! archive's own pages: [`Fs::bytes`] and [`File`]'s reads copy nothing but what the caller
//! asks for.
//!
//! ```ignore
//! let page = fs.read_to_string("/index.html")?;
//! let mut file = File::open(&fs, "static/logo.png")?;
//! file.seek(SeekFrom::Start(16))?;
//! for entry in fs.read_dir("/static")? { println!("{}", entry.file_name()); }
//! ```
//!
//! Paths use `/`, are taken from the root whether they start with `/` or not, and are
//! resolved lexically: `.` is skipped and `..` goes up, never above the root (as on Linux,
//! where `/..` is `/`). There are no links to follow: symbolic links in the archive are
//! listed but not read.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

#[doc(hidden)]
pub mod conformance;
pub mod cpio;

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::ops::Bound;
pub use cpio::CorruptArchive;
use cpio::{EntryKind, Reason};
pub use embedded_io::{BufRead, Read, Seek, SeekFrom};

/// Why a file operation failed; the variants are named as `std::io::ErrorKind`'s.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// No entry has this path.
    NotFound,
    /// A directory was expected (`read_dir`), or a path goes through a file (`a.txt/b`).
    NotADirectory,
    /// A file was expected (reading a directory).
    IsADirectory,
    /// The file is not UTF-8 (`read_to_string`).
    InvalidData,
    /// A seek before the start of the file.
    InvalidInput,
    /// The entry is neither a file nor a directory (a symbolic link, a device).
    Unsupported,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotFound => "no such file or directory",
            Self::NotADirectory => "not a directory",
            Self::IsADirectory => "is a directory",
            Self::InvalidData => "stream did not contain valid UTF-8",
            Self::InvalidInput => "invalid seek to a negative or overflowing position",
            Self::Unsupported => "not a regular file or directory",
        })
    }
}

impl core::error::Error for Error {}

impl embedded_io::Error for Error {
    fn kind(&self) -> embedded_io::ErrorKind {
        use embedded_io::ErrorKind;
        match self {
            Self::NotFound => ErrorKind::NotFound,
            Self::InvalidData => ErrorKind::InvalidData,
            Self::InvalidInput => ErrorKind::InvalidInput,
            Self::Unsupported => ErrorKind::Unsupported,
            Self::NotADirectory | Self::IsADirectory => ErrorKind::Other,
        }
    }
}

/// Why the file system could not start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InitError {
    /// The initrd is not a valid newc cpio archive.
    Corrupt(CorruptArchive),
}

impl fmt::Display for InitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Corrupt(error) => write!(f, "the initrd: {error}"),
        }
    }
}

/// What [`init`] logs when the VMM passed no initrd.
pub const NO_INITRD: &str = "fs: the VMM passed no initrd, so there are no files; give them with `cargo uk run <app> --files <dir>` or `files = \"<dir>\"` in the app's [package.metadata.unikernel]";

/// What an entry is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileType {
    File,
    Dir,
    /// A symbolic link, a device, a fifo or a socket: listed, not read.
    Other,
}

impl FileType {
    pub fn is_file(self) -> bool {
        self == Self::File
    }
    pub fn is_dir(self) -> bool {
        self == Self::Dir
    }
}

#[derive(Clone, Copy, Debug)]
struct Node {
    kind: FileType,
    mode: u32,
    mtime: u32,
    data: &'static [u8],
}

impl Node {
    const IMPLICIT_DIR: Node = Node {
        kind: FileType::Dir,
        mode: 0o040755,
        mtime: 0,
        data: &[],
    };
}

/// An entry's size, kind, permission bits and modification time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Metadata {
    file_type: FileType,
    len: u64,
    mode: u32,
    modified: u32,
}

impl Metadata {
    fn of(node: &Node) -> Self {
        Self {
            file_type: node.kind,
            len: node.data.len() as u64,
            mode: node.mode,
            modified: node.mtime,
        }
    }
    pub fn file_type(&self) -> FileType {
        self.file_type
    }
    pub fn is_file(&self) -> bool {
        self.file_type.is_file()
    }
    pub fn is_dir(&self) -> bool {
        self.file_type.is_dir()
    }
    /// The size in bytes (0 for a directory).
    pub fn len(&self) -> u64 {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// The mode bits as the archive has them (`st_mode`: type and permissions).
    pub fn mode(&self) -> u32 {
        self.mode
    }
    /// The modification time, in seconds since the Unix epoch.
    pub fn modified(&self) -> u64 {
        self.modified.into()
    }
}

/// The archive's entries by path (`""` is the root, `"a/b.txt"` a file in `a`).
#[derive(Debug)]
struct Index {
    nodes: BTreeMap<String, Node>,
}

/// The file system: a handle `main` takes, cheap to copy.
#[derive(Clone, Copy)]
pub struct Fs {
    index: &'static Index,
}

impl fmt::Debug for Fs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fs")
            .field("entries", &self.index.nodes.len())
            .finish()
    }
}

/// Starts the file system over the initrd the VMM loaded. Without one (`None`) it is an
/// empty root, with a warning: an app that serves optional files still boots where the
/// VMM cannot load an initrd, and every lookup says `NotFound`.
pub fn init(initrd: Option<&'static [u8]>) -> Result<Fs, InitError> {
    let Some(archive) = initrd else {
        log::warn!("{NO_INITRD}");
        return Ok(Fs::empty());
    };
    Fs::from_archive(archive).map_err(InitError::Corrupt)
}

impl Fs {
    /// A file system with nothing but its root directory.
    pub fn empty() -> Self {
        let mut nodes = BTreeMap::new();
        nodes.insert(String::new(), Node::IMPLICIT_DIR);
        Self {
            index: Box::leak(Box::new(Index { nodes })),
        }
    }

    /// Checks and indexes a newc cpio archive. The index lives for the rest of the run.
    pub fn from_archive(archive: &'static [u8]) -> Result<Self, CorruptArchive> {
        let mut nodes = BTreeMap::new();
        nodes.insert(String::new(), Node::IMPLICIT_DIR);
        for entry in cpio::entries(archive) {
            let entry = entry?;
            let corrupt = |reason| CorruptArchive {
                offset: entry.offset,
                reason,
            };
            let key =
                normalize(entry.name, Climb::Refuse).ok_or(corrupt(Reason::NameOutsideRoot))?;
            if key.is_empty() {
                // `.`: the root's own entry; the root stays a directory.
                continue;
            }
            // Parents the archive does not list are directories all the same.
            for (at, _) in key.match_indices('/') {
                let parent = &key[..at];
                match nodes.get(parent) {
                    Some(node) if node.kind != FileType::Dir => {
                        return Err(corrupt(Reason::BadName));
                    }
                    Some(_) => {}
                    None => {
                        nodes.insert(String::from(parent), Node::IMPLICIT_DIR);
                    }
                }
            }
            let kind = match entry.kind {
                EntryKind::File => FileType::File,
                EntryKind::Dir => FileType::Dir,
                EntryKind::Other => FileType::Other,
            };
            if let Some(old) = nodes.get(&key)
                && old.kind == FileType::Dir
                && kind != FileType::Dir
                && nodes.range::<String, _>(child_range(&key)).next().is_some()
            {
                // A file over a directory that already has entries under it.
                return Err(corrupt(Reason::BadName));
            }
            // A later entry of the same path replaces the earlier one, as when the
            // kernel unpacks an initramfs.
            nodes.insert(
                key,
                Node {
                    kind,
                    mode: entry.mode,
                    mtime: entry.mtime,
                    data: entry.data,
                },
            );
        }
        Ok(Self {
            index: Box::leak(Box::new(Index { nodes })),
        })
    }

    fn node(&self, path: &str) -> Result<&'static Node, Error> {
        let key = normalize(path, Climb::StopAtRoot).ok_or(Error::NotFound)?;
        if let Some(node) = self.index.nodes.get(&key) {
            return Ok(node);
        }
        // `a.txt/b` fails as on Linux: a file is not a directory.
        for (at, _) in key.match_indices('/') {
            match self.index.nodes.get(&key[..at]) {
                Some(node) if node.kind != FileType::Dir => return Err(Error::NotADirectory),
                Some(_) => {}
                None => return Err(Error::NotFound),
            }
        }
        Err(Error::NotFound)
    }

    fn file(&self, path: &str) -> Result<&'static [u8], Error> {
        let node = self.node(path)?;
        match node.kind {
            FileType::File => Ok(node.data),
            FileType::Dir => Err(Error::IsADirectory),
            FileType::Other => Err(Error::Unsupported),
        }
    }

    /// The file's bytes, in the initrd's own pages: no copy.
    pub fn bytes(&self, path: &str) -> Result<&'static [u8], Error> {
        self.file(path)
    }

    /// The file's bytes, copied (`std::fs::read`).
    pub fn read(&self, path: &str) -> Result<Vec<u8>, Error> {
        self.file(path).map(<[u8]>::to_vec)
    }

    /// The file as text (`std::fs::read_to_string`); `InvalidData` when it is not UTF-8.
    pub fn read_to_string(&self, path: &str) -> Result<String, Error> {
        self.str(path).map(String::from)
    }

    /// The file as text, in the initrd's own pages: no copy.
    pub fn str(&self, path: &str) -> Result<&'static str, Error> {
        core::str::from_utf8(self.file(path)?).map_err(|_| Error::InvalidData)
    }

    /// The entry's metadata (`std::fs::metadata`).
    pub fn metadata(&self, path: &str) -> Result<Metadata, Error> {
        self.node(path).map(Metadata::of)
    }

    /// Whether the path names an entry (`std::fs::exists`, without its error case).
    pub fn exists(&self, path: &str) -> bool {
        self.node(path).is_ok()
    }

    /// The entries of a directory, in byte order of their names (`std::fs::read_dir`,
    /// whose order is unspecified; here it is sorted).
    pub fn read_dir(&self, path: &str) -> Result<ReadDir, Error> {
        let key = normalize(path, Climb::StopAtRoot).ok_or(Error::NotFound)?;
        match self.node(path)?.kind {
            FileType::Dir => {}
            _ => return Err(Error::NotADirectory),
        }
        let prefix_len = if key.is_empty() { 0 } else { key.len() + 1 };
        let range = self.index.nodes.range::<String, _>(child_range(&key));
        Ok(ReadDir {
            entries: range
                .filter(|(child, _)| !child[prefix_len..].contains('/'))
                .map(|(child, node)| DirEntry {
                    path: child.as_str(),
                    name_at: prefix_len,
                    node,
                })
                .collect::<Vec<_>>()
                .into_iter(),
        })
    }
}

/// The bounds of the keys strictly under `dir`: from `"a/"` up to, not including, `"a0"`
/// (`'0'` follows `'/'`), or every key but the root's for the root.
fn child_range(dir: &str) -> (Bound<String>, Bound<String>) {
    if dir.is_empty() {
        return (Bound::Excluded(String::new()), Bound::Unbounded);
    }
    (
        Bound::Included(alloc::format!("{dir}/")),
        Bound::Excluded(alloc::format!("{dir}0")),
    )
}

/// An iterator over a directory's entries.
#[derive(Debug)]
pub struct ReadDir {
    entries: alloc::vec::IntoIter<DirEntry>,
}

impl Iterator for ReadDir {
    type Item = DirEntry;
    fn next(&mut self) -> Option<DirEntry> {
        self.entries.next()
    }
}

/// One entry of a directory.
#[derive(Clone, Copy, Debug)]
pub struct DirEntry {
    path: &'static str,
    name_at: usize,
    node: &'static Node,
}

impl DirEntry {
    /// The entry's name, without its directory.
    pub fn file_name(&self) -> &'static str {
        &self.path[self.name_at..]
    }
    /// The entry's path from the root, with a leading `/`.
    pub fn path(&self) -> String {
        alloc::format!("/{}", self.path)
    }
    pub fn file_type(&self) -> FileType {
        self.node.kind
    }
    pub fn metadata(&self) -> Metadata {
        Metadata::of(self.node)
    }
}

/// An open file: a read position over bytes in the initrd's pages.
#[derive(Clone, Debug)]
pub struct File {
    node: &'static Node,
    position: u64,
}

impl File {
    /// Opens a file for reading (`std::fs::File::open`). A directory opens, as on Linux,
    /// and its reads fail with `IsADirectory`.
    pub fn open(fs: &Fs, path: &str) -> Result<File, Error> {
        let node = fs.node(path)?;
        if node.kind == FileType::Other {
            return Err(Error::Unsupported);
        }
        Ok(File { node, position: 0 })
    }

    pub fn metadata(&self) -> Metadata {
        Metadata::of(self.node)
    }

    /// The whole file, in the initrd's pages (whatever the position).
    pub fn as_bytes(&self) -> &'static [u8] {
        self.node.data
    }

    fn rest(&self) -> Result<&'static [u8], Error> {
        if self.node.kind == FileType::Dir {
            return Err(Error::IsADirectory);
        }
        let data = self.node.data;
        let at = usize::try_from(self.position).map_or(data.len(), |at| at.min(data.len()));
        Ok(&data[at..])
    }

    /// Reads what is left from the position to the end into `buf` (std's `read_to_end`).
    pub fn read_to_end(&mut self, buf: &mut Vec<u8>) -> Result<usize, Error> {
        let rest = self.rest()?;
        buf.extend_from_slice(rest);
        self.position += rest.len() as u64;
        Ok(rest.len())
    }
}

impl embedded_io::ErrorType for File {
    type Error = Error;
}

impl Read for File {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
        let rest = self.rest()?;
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        self.position += n as u64;
        Ok(n)
    }
}

impl BufRead for File {
    fn fill_buf(&mut self) -> Result<&[u8], Error> {
        self.rest()
    }

    fn consume(&mut self, amt: usize) {
        self.position = self.position.saturating_add(amt as u64);
    }
}

impl Seek for File {
    /// As std: a position past the end is allowed (reads there return 0), one before the
    /// start is `InvalidInput`.
    fn seek(&mut self, pos: SeekFrom) -> Result<u64, Error> {
        let (base, offset) = match pos {
            SeekFrom::Start(at) => {
                self.position = at;
                return Ok(at);
            }
            SeekFrom::End(offset) => (self.node.data.len() as u64, offset),
            SeekFrom::Current(offset) => (self.position, offset),
        };
        self.position = base.checked_add_signed(offset).ok_or(Error::InvalidInput)?;
        Ok(self.position)
    }
}

/// What `..` at the root means: a name in the archive that climbs out is refused; a path
/// an app asks for stays at the root, as on Linux.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Climb {
    Refuse,
    StopAtRoot,
}

/// The path as an index key: components joined by `/`, no leading `/`, no `.`, `..`
/// resolved; `None` when it climbs out and `climb` refuses that.
fn normalize(path: &str, climb: Climb) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() && climb == Climb::Refuse {
                    return None;
                }
            }
            name => parts.push(name),
        }
    }
    Some(parts.join("/"))
}

#[cfg(test)]
mod tests;
