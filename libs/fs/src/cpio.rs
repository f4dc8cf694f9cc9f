//! The newc ("070701") and crc ("070702") cpio formats, read defensively: the image comes
//! from outside the guest, so every number is checked before it is used, and a bad archive
//! is an error naming the offset, never a fault.
//!
//! An entry is a 110-byte header of ASCII hex fields, the NUL-terminated name, padding to
//! 4 bytes, the data, padding to 4 bytes; the entry named `TRAILER!!!` ends the archive.

use core::fmt;

const HEADER_LEN: usize = 110;
const TRAILER: &[u8] = b"TRAILER!!!";
/// The longest entry name accepted (Linux's PATH_MAX).
pub const MAX_NAME: usize = 4096;

/// What kind of file an entry is, from its mode's type bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryKind {
    File,
    Dir,
    /// Symbolic links, devices, fifos, sockets: listed but not read.
    Other,
}

/// One entry of the archive, borrowing the archive's bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry<'a> {
    /// Where its header starts in the archive.
    pub offset: usize,
    pub name: &'a str,
    pub kind: EntryKind,
    pub mode: u32,
    pub mtime: u32,
    pub data: &'a [u8],
}

/// Why an archive was refused, and where.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CorruptArchive {
    /// The offset of the entry's header in the archive.
    pub offset: usize,
    pub reason: Reason,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// The archive ends inside a header, a name or a file's data.
    Truncated,
    /// The header does not start with `070701` or `070702`.
    BadMagic,
    /// A header field is not 8 hex digits.
    BadField,
    /// The name is empty, longer than [`MAX_NAME`], not NUL-terminated or not UTF-8.
    BadName,
    /// The name climbs out of the root (`..`).
    NameOutsideRoot,
    /// A directory or a link with data of its own, or a file larger than memory.
    BadSize,
    /// The archive ends without the `TRAILER!!!` entry.
    NoTrailer,
}

impl fmt::Display for CorruptArchive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let reason = match self.reason {
            Reason::Truncated => "the archive ends inside this entry",
            Reason::BadMagic => "not a newc cpio header (magic 070701 or 070702)",
            Reason::BadField => "a header field is not 8 hex digits",
            Reason::BadName => "the name is empty, too long, unterminated or not UTF-8",
            Reason::NameOutsideRoot => "the name climbs out of the root with `..`",
            Reason::BadSize => "the entry's size does not fit its kind",
            Reason::NoTrailer => "the archive ends without its TRAILER!!! entry",
        };
        write!(
            f,
            "corrupt cpio archive at offset {}: {reason}",
            self.offset
        )
    }
}

/// The entries of an archive in order; the first error ends the iteration.
#[derive(Clone, Debug)]
pub struct Entries<'a> {
    archive: &'a [u8],
    offset: usize,
    done: bool,
}

/// Reads `archive` entry by entry.
pub fn entries(archive: &[u8]) -> Entries<'_> {
    Entries {
        archive,
        offset: 0,
        done: false,
    }
}

impl<'a> Iterator for Entries<'a> {
    type Item = Result<Entry<'a>, CorruptArchive>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let offset = self.offset;
        let result = self.read_entry();
        match result {
            Ok(Some(entry)) => Some(Ok(entry)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(reason) => {
                self.done = true;
                Some(Err(CorruptArchive { offset, reason }))
            }
        }
    }
}

const S_IFMT: u32 = 0o170000;
const S_IFREG: u32 = 0o100000;
const S_IFDIR: u32 = 0o040000;

impl<'a> Entries<'a> {
    /// The entry at `self.offset`, `None` at the trailer.
    fn read_entry(&mut self) -> Result<Option<Entry<'a>>, Reason> {
        let start = self.offset;
        let rest = &self.archive[start..];
        if rest.is_empty() {
            return Err(Reason::NoTrailer);
        }
        let header = rest.get(..HEADER_LEN).ok_or(Reason::Truncated)?;
        if &header[..6] != b"070701" && &header[..6] != b"070702" {
            return Err(Reason::BadMagic);
        }
        // Fields after the magic: ino, mode, uid, gid, nlink, mtime, filesize, devmajor,
        // devminor, rdevmajor, rdevminor, namesize, check.
        let field = |index: usize| hex_field(&header[6 + 8 * index..14 + 8 * index]);
        let mode = field(1)?;
        let mtime = field(5)?;
        let file_size = field(6)? as usize;
        let name_size = field(11)? as usize;
        for index in [0, 2, 3, 4, 7, 8, 9, 10, 12] {
            field(index)?;
        }
        if name_size == 0 || name_size > MAX_NAME + 1 {
            return Err(Reason::BadName);
        }
        // `name_size` counts the NUL; the header and the name are padded to 4 bytes.
        let name_field = rest
            .get(HEADER_LEN..HEADER_LEN + name_size)
            .ok_or(Reason::Truncated)?;
        let (&nul, name) = name_field.split_last().ok_or(Reason::BadName)?;
        if nul != 0 || name.is_empty() || name.contains(&0) {
            return Err(Reason::BadName);
        }
        let name = core::str::from_utf8(name).map_err(|_| Reason::BadName)?;
        let data_start = (HEADER_LEN + name_size).next_multiple_of(4);
        let data_end = data_start.checked_add(file_size).ok_or(Reason::BadSize)?;
        let data = rest.get(data_start..data_end).ok_or(Reason::Truncated)?;
        // The last entry's padding may be missing; the next offset is then the end.
        let next = data_end.next_multiple_of(4).min(rest.len());
        self.offset = start + next;
        if name.as_bytes() == TRAILER {
            return Ok(None);
        }
        let kind = match mode & S_IFMT {
            S_IFREG => EntryKind::File,
            S_IFDIR => EntryKind::Dir,
            _ => EntryKind::Other,
        };
        if kind == EntryKind::Dir && file_size != 0 {
            return Err(Reason::BadSize);
        }
        Ok(Some(Entry {
            offset: start,
            name,
            kind,
            mode,
            mtime,
            data,
        }))
    }
}

fn hex_field(digits: &[u8]) -> Result<u32, Reason> {
    digits.iter().try_fold(0u32, |value, &digit| {
        let nibble = (digit as char).to_digit(16).ok_or(Reason::BadField)?;
        Ok((value << 4) | nibble)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::string::ToString;
    use std::vec::Vec;

    /// A newc header written by hand, so that tests can break any field.
    fn header(mode: u32, file_size: usize, name: &str) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(b"070701");
        let fields = [
            1,
            mode,
            0,
            0,
            1,
            1_700_000_000,
            file_size as u32,
            0,
            0,
            0,
            0,
            name.len() as u32 + 1,
            0,
        ];
        for value in fields {
            out.extend_from_slice(std::format!("{value:08X}").as_bytes());
        }
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        while !out.len().is_multiple_of(4) {
            out.push(0);
        }
        out
    }

    fn entry(mode: u32, name: &str, data: &[u8]) -> Vec<u8> {
        let mut out = header(mode, data.len(), name);
        out.extend_from_slice(data);
        while !out.len().is_multiple_of(4) {
            out.push(0);
        }
        out
    }

    fn archive(entries: &[(u32, &str, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (mode, name, data) in entries {
            out.extend(entry(*mode, name, data));
        }
        out.extend(entry(0, "TRAILER!!!", b""));
        out
    }

    fn parse(bytes: &[u8]) -> Result<Vec<Entry<'_>>, CorruptArchive> {
        entries(bytes).collect()
    }

    #[test]
    fn reads_files_and_directories() {
        let bytes = archive(&[
            (0o040755, "www", b""),
            (0o100644, "www/index.html", b"<h1>hi</h1>"),
            (0o120777, "link", b"www"),
        ]);
        let list = parse(&bytes).unwrap();
        assert_eq!(list.len(), 3);
        assert_eq!(list[0].kind, EntryKind::Dir);
        assert_eq!(list[1].name, "www/index.html");
        assert_eq!(list[1].data, b"<h1>hi</h1>");
        assert_eq!(list[1].mtime, 1_700_000_000);
        assert_eq!(list[2].kind, EntryKind::Other);
    }

    #[test]
    fn reads_what_the_cpio_crate_writes() {
        let mut out = std::io::Cursor::new(Vec::new());
        let inputs = [
            ("a.txt", &b"alpha"[..]),
            ("dir/b.bin", &[0u8, 1, 2, 3, 4][..]),
        ];
        for (name, data) in inputs {
            let builder = ::cpio::newc::Builder::new(name).mode(0o100644);
            let mut writer = builder.write(&mut out, data.len() as u32);
            std::io::Write::write_all(&mut writer, data).unwrap();
            writer.finish().unwrap();
        }
        ::cpio::newc::trailer(&mut out).unwrap();
        let bytes = out.into_inner();
        let list = parse(&bytes).unwrap();
        assert_eq!(list.len(), 2);
        for (entry, (name, data)) in list.iter().zip(inputs) {
            assert_eq!((entry.name, entry.data), (name, data));
        }
    }

    #[test]
    fn every_truncation_is_an_error_not_a_fault() {
        let bytes = archive(&[(0o100644, "a", b"0123456789"), (0o100644, "bb", b"x")]);
        assert!(parse(&bytes).is_ok());
        for len in 0..bytes.len() {
            let cut = &bytes[..len];
            let mut saw_error = false;
            for item in entries(cut) {
                if item.is_err() {
                    saw_error = true;
                }
            }
            // Cutting only the trailer's final padding still leaves a whole trailer.
            let trailer_whole = len >= bytes.len() - 2;
            assert!(saw_error || trailer_whole, "a cut at {len} went unnoticed");
        }
    }

    #[test]
    fn hostile_numbers_are_refused() {
        let good = archive(&[(0o100644, "a", b"data")]);
        let with = |at: usize, text: &[u8]| {
            let mut bytes = good.clone();
            bytes[at..at + text.len()].copy_from_slice(text);
            parse(&bytes).unwrap_err()
        };
        // File size (field 6) past the end, and at the top of the range.
        assert_eq!(with(6 + 8 * 6, b"00001000").reason, Reason::Truncated);
        assert_eq!(with(6 + 8 * 6, b"FFFFFFFF").reason, Reason::Truncated);
        // Name size (field 11): zero, huge, one too short (no NUL at the end).
        assert_eq!(with(6 + 8 * 11, b"00000000").reason, Reason::BadName);
        assert_eq!(with(6 + 8 * 11, b"FFFFFFFF").reason, Reason::BadName);
        assert_eq!(with(6 + 8 * 11, b"00000001").reason, Reason::BadName);
        // Not hex, bad magic.
        assert_eq!(with(6 + 8 * 2, b"0000000g").reason, Reason::BadField);
        assert_eq!(with(6 + 8 * 12, b"-0000000").reason, Reason::BadField);
        assert_eq!(with(0, b"070707").reason, Reason::BadMagic);
        let error = with(0, b"070707");
        assert_eq!(error.offset, 0);
        assert_eq!(
            error.to_string(),
            "corrupt cpio archive at offset 0: not a newc cpio header (magic 070701 or 070702)"
        );
    }

    #[test]
    fn names_must_be_utf8_and_nul_terminated() {
        let mut bytes = archive(&[(0o100644, "ab", b"")]);
        bytes[HEADER_LEN] = 0xff;
        assert_eq!(parse(&bytes).unwrap_err().reason, Reason::BadName);
        let mut bytes = archive(&[(0o100644, "ab", b"")]);
        bytes[HEADER_LEN + 2] = b'c';
        assert_eq!(parse(&bytes).unwrap_err().reason, Reason::BadName);
        let mut bytes = archive(&[(0o100644, "ab", b"")]);
        bytes[HEADER_LEN] = 0;
        assert_eq!(parse(&bytes).unwrap_err().reason, Reason::BadName);
    }

    #[test]
    fn a_directory_with_data_is_refused() {
        let bytes = archive(&[(0o040755, "d", b"x")]);
        assert_eq!(parse(&bytes).unwrap_err().reason, Reason::BadSize);
    }

    #[test]
    fn the_trailer_is_required_and_the_second_entry_reports_its_offset() {
        let bytes = entry(0o100644, "a", b"abc");
        assert_eq!(parse(&bytes).unwrap_err().reason, Reason::NoTrailer);
        assert_eq!(parse(b"").unwrap_err().reason, Reason::NoTrailer);
        let mut bytes = archive(&[(0o100644, "a", b"abc"), (0o100644, "b", b"")]);
        let second = entry(0o100644, "a", b"abc").len();
        bytes[second] = b'X';
        assert_eq!(
            parse(&bytes).unwrap_err(),
            CorruptArchive {
                offset: second,
                reason: Reason::BadMagic
            }
        );
    }

    #[test]
    fn garbage_never_faults() {
        // A small deterministic generator: every byte string it makes must parse or fail.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let good = archive(&[(0o100644, "file", b"contents"), (0o040755, "d", b"")]);
        for _ in 0..20_000 {
            let mut bytes = good.clone();
            for _ in 0..4 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let at = (state % bytes.len() as u64) as usize;
                bytes[at] = (state >> 32) as u8;
            }
            let _ = parse(&bytes);
        }
    }
}
