//! One body of file operations on a writable file system, run against this crate (on the
//! host over an image in memory, in a guest by `examples/disk-io --conformance`) and
//! against `std::fs` (unit tests): each records every result as a line, and the lines
//! must agree. Its expected lines, `examples/disk-io/expected.txt`, are what std gives.

use crate::{Disk, Error, File, OpenOptions, Read, Seek, SeekFrom, Write};
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

/// What the body needs of a file system; paths are relative to its root.
pub trait Files {
    type File: Read<Error = Error> + Write<Error = Error> + Seek<Error = Error>;
    fn create_dir(&self, path: &str) -> Result<(), Error>;
    fn write(&self, path: &str, data: &[u8]) -> Result<(), Error>;
    fn read(&self, path: &str) -> Result<Vec<u8>, Error>;
    /// Opens with the std flags named: `r`ead, `w`rite, `a`ppend, `t`runcate, `c`reate,
    /// `n`: create new.
    fn open(&self, path: &str, flags: &str) -> Result<Self::File, Error>;
    fn sync_all(&self, file: &Self::File) -> Result<(), Error>;
    fn set_len(&self, file: &mut Self::File, len: u64) -> Result<(), Error>;
    fn rename(&self, from: &str, to: &str) -> Result<(), Error>;
    fn remove_file(&self, path: &str) -> Result<(), Error>;
    fn remove_dir(&self, path: &str) -> Result<(), Error>;
    /// The names, sorted.
    fn read_dir(&self, path: &str) -> Result<Vec<String>, Error>;
    /// Whether a file, whether a directory, the length (0 for a directory).
    fn metadata(&self, path: &str) -> Result<(bool, bool, u64), Error>;
}

impl Files for Disk {
    type File = File;
    fn create_dir(&self, path: &str) -> Result<(), Error> {
        Disk::create_dir(self, &rooted(path))
    }
    fn write(&self, path: &str, data: &[u8]) -> Result<(), Error> {
        Disk::write(self, &rooted(path), data)
    }
    fn read(&self, path: &str) -> Result<Vec<u8>, Error> {
        Disk::read(self, &rooted(path))
    }
    fn open(&self, path: &str, flags: &str) -> Result<File, Error> {
        OpenOptions::new()
            .read(flags.contains('r'))
            .write(flags.contains('w'))
            .append(flags.contains('a'))
            .truncate(flags.contains('t'))
            .create(flags.contains('c'))
            .create_new(flags.contains('n'))
            .open(self, &rooted(path))
    }
    fn sync_all(&self, file: &File) -> Result<(), Error> {
        file.sync_all()
    }
    fn set_len(&self, file: &mut File, len: u64) -> Result<(), Error> {
        file.set_len(len)
    }
    fn rename(&self, from: &str, to: &str) -> Result<(), Error> {
        Disk::rename(self, &rooted(from), &rooted(to))
    }
    fn remove_file(&self, path: &str) -> Result<(), Error> {
        Disk::remove_file(self, &rooted(path))
    }
    fn remove_dir(&self, path: &str) -> Result<(), Error> {
        Disk::remove_dir(self, &rooted(path))
    }
    fn read_dir(&self, path: &str) -> Result<Vec<String>, Error> {
        Ok(Disk::read_dir(self, &rooted(path))?
            .iter()
            .map(|entry| entry.file_name().to_string())
            .collect())
    }
    fn metadata(&self, path: &str) -> Result<(bool, bool, u64), Error> {
        Disk::metadata(self, &rooted(path)).map(|m| (m.is_file(), m.is_dir(), m.len()))
    }
}

fn rooted(path: &str) -> String {
    format!("/{path}")
}

fn show<T: core::fmt::Debug>(result: Result<T, Error>) -> String {
    format!("{:?}", result.map_err(|error| error.kind()))
}

fn text(result: Result<Vec<u8>, Error>) -> String {
    show(result.map(|bytes| String::from_utf8_lossy(&bytes).into_owned()))
}

/// Runs the body; one line per result, in order.
pub fn exercise(files: &impl Files) -> Vec<String> {
    let mut log = Vec::new();
    let mut line = |what: &str, result: String| log.push(format!("{what}: {result}"));
    line("create_dir t", show(files.create_dir("t")));
    line("create_dir t again", show(files.create_dir("t")));
    line("write t/a.txt", show(files.write("t/a.txt", b"hello")));
    line("read t/a.txt", text(files.read("t/a.txt")));
    let appended = files.open("t/a.txt", "a").and_then(|mut file| {
        file.write_all(b" world")?;
        files.sync_all(&file)
    });
    line("append and sync_all", show(appended));
    line("read after append", text(files.read("t/a.txt")));
    let created = files
        .open("t/a.txt", "wct")
        .and_then(|mut file| file.write_all(b"new"));
    line("create over it", show(created));
    line("read after create", text(files.read("t/a.txt")));
    line(
        "create_new existing",
        show(files.open("t/a.txt", "wn").map(|_| ())),
    );
    line(
        "open missing",
        show(files.open("t/missing", "r").map(|_| ())),
    );
    line(
        "write under a missing dir",
        show(files.write("t/none/x", b"x")),
    );
    line("read a directory", text(files.read("t")));
    line("read through a file", text(files.read("t/a.txt/x")));
    line("rename a to b", show(files.rename("t/a.txt", "t/b.txt")));
    line("read a after rename", text(files.read("t/a.txt")));
    line("read b after rename", text(files.read("t/b.txt")));
    line("write c", show(files.write("t/c.txt", b"c")));
    line("rename b over c", show(files.rename("t/b.txt", "t/c.txt")));
    line("read c", text(files.read("t/c.txt")));
    line("remove_dir non-empty", show(files.remove_dir("t")));
    line("remove_dir a file", show(files.remove_dir("t/c.txt")));
    line("remove_file c", show(files.remove_file("t/c.txt")));
    line("remove_file c again", show(files.remove_file("t/c.txt")));
    line("read_dir t empty", show(files.read_dir("t")));
    line("create_dir t/sub", show(files.create_dir("t/sub")));
    line("write t/sub/x", show(files.write("t/sub/x", b"1")));
    line("read_dir t", show(files.read_dir("t")));
    line("read_dir a file", show(files.read_dir("t/sub/x")));
    line("metadata file", show(files.metadata("t/sub/x")));
    line("metadata dir", show(files.metadata("t/sub")));
    line("metadata missing", show(files.metadata("t/nope")));
    let in_place = files.open("t/f", "rwc").and_then(|mut file| {
        let mut steps = Vec::new();
        file.write_all(b"0123456789")?;
        steps.push(format!("{:?}", file.seek(SeekFrom::Start(3))?));
        file.write_all(b"abc")?;
        steps.push(format!("{:?}", file.seek(SeekFrom::End(-2))?));
        let mut tail = [0u8; 8];
        let n = file.read(&mut tail)?;
        steps.push(String::from_utf8_lossy(&tail[..n]).into_owned());
        steps.push(format!("{:?}", file.seek(SeekFrom::Current(0))?));
        files.set_len(&mut file, 4)?;
        Ok(steps)
    });
    line("seek, write, read, set_len", show(in_place));
    line("read t/f", text(files.read("t/f")));
    log
}
