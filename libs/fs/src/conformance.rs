//! One body of file operations, run against this crate (on the host in unit tests, in a
//! guest by `examples/files`) and against `std::fs` (unit tests): each side records every
//! result as a line, and the lines must agree. The tree it reads is `examples/files/tree`;
//! its expected lines, `examples/files/expected.txt`, are what std gives.

use crate::{Error, File, Fs, Read, Seek, SeekFrom};
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

/// What the body needs of a file system.
pub trait Files {
    type File: Read<Error = Error> + Seek<Error = Error>;
    fn read(&self, path: &str) -> Result<Vec<u8>, Error>;
    fn read_to_string(&self, path: &str) -> Result<String, Error>;
    /// Whether a file, whether a directory, the length (0 for a directory).
    fn metadata(&self, path: &str) -> Result<(bool, bool, u64), Error>;
    /// The names, sorted.
    fn read_dir(&self, path: &str) -> Result<Vec<String>, Error>;
    fn open(&self, path: &str) -> Result<Self::File, Error>;
}

impl Files for Fs {
    type File = File;
    fn read(&self, path: &str) -> Result<Vec<u8>, Error> {
        Fs::read(self, path)
    }
    fn read_to_string(&self, path: &str) -> Result<String, Error> {
        Fs::read_to_string(self, path)
    }
    fn metadata(&self, path: &str) -> Result<(bool, bool, u64), Error> {
        Fs::metadata(self, path).map(|m| (m.is_file(), m.is_dir(), m.len()))
    }
    fn read_dir(&self, path: &str) -> Result<Vec<String>, Error> {
        Ok(Fs::read_dir(self, path)?
            .map(|entry| entry.file_name().to_string())
            .collect())
    }
    fn open(&self, path: &str) -> Result<File, Error> {
        File::open(self, path)
    }
}

/// Runs the body; one line per result, in order.
pub fn exercise(files: &impl Files) -> Vec<String> {
    let mut log = Vec::new();
    for path in [
        "hello.txt",
        "/hello.txt",
        "dir/nested.txt",
        "dir/../hello.txt",
        "./dir/./sub/deep.txt",
        "dir/a",
        "missing",
        "dir/missing.txt",
        "dir",
        "hello.txt/x",
        "binary.bin",
    ] {
        log.push(format!("read {path}: {:?}", files.read(path)));
        log.push(format!(
            "read_to_string {path}: {:?}",
            files.read_to_string(path)
        ));
        log.push(format!("metadata {path}: {:?}", files.metadata(path)));
        log.push(format!("read_dir {path}: {:?}", files.read_dir(path)));
    }
    for dir in ["/", "", "dir", "dir/sub", "dir/sub/..", "dir/../dir/sub"] {
        log.push(format!("read_dir {dir:?}: {:?}", files.read_dir(dir)));
    }

    let mut buf = [0u8; 6];
    match files.open("dir/nested.txt") {
        Ok(mut file) => {
            let steps = [
                format!("{:?}", file.read(&mut buf).map(|n| buf[..n].to_vec())),
                format!("{:?}", file.seek(SeekFrom::End(-4))),
                format!("{:?}", file.read(&mut buf).map(|n| buf[..n].to_vec())),
                format!("{:?}", file.read(&mut buf)),
                format!("{:?}", file.seek(SeekFrom::Current(-100))),
                format!("{:?}", file.seek(SeekFrom::Current(-3))),
                format!("{:?}", file.read(&mut buf).map(|n| buf[..n].to_vec())),
                format!("{:?}", file.seek(SeekFrom::Start(1000))),
                format!("{:?}", file.read(&mut buf)),
                format!("{:?}", file.seek(SeekFrom::Start(7))),
                format!(
                    "{:?}",
                    file.read_exact(&mut buf[..4]).map(|()| buf[..4].to_vec())
                ),
            ];
            for (i, step) in steps.into_iter().enumerate() {
                log.push(format!("file step {i}: {step}"));
            }
        }
        Err(error) => log.push(format!("open dir/nested.txt: {error:?}")),
    }
    match files.open("dir") {
        Ok(mut dir) => log.push(format!("read a directory: {:?}", dir.read(&mut buf))),
        Err(error) => log.push(format!("open dir: {error:?}")),
    }
    log.push(format!(
        "open missing: {:?}",
        files.open("nope").map(|_| ())
    ));
    log
}
