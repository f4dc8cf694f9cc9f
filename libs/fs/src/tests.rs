//! The file API against std's: one test body, run over a folder through `std::fs` and over
//! a cpio archive of the same folder through this crate.

extern crate std;

use super::*;
use crate::conformance::{Files, exercise};
use alloc::string::ToString;
use std::path::{Path, PathBuf};

/// `std::fs` rooted at a folder, its errors named as this crate's.
struct Std(PathBuf);

fn from_std(error: std::io::Error) -> Error {
    use std::io::ErrorKind;
    match error.kind() {
        ErrorKind::NotFound => Error::NotFound,
        ErrorKind::NotADirectory => Error::NotADirectory,
        ErrorKind::IsADirectory => Error::IsADirectory,
        ErrorKind::InvalidData => Error::InvalidData,
        ErrorKind::InvalidInput => Error::InvalidInput,
        other => panic!("std returned {other:?}, which the API has no name for"),
    }
}

impl Std {
    fn path(&self, path: &str) -> PathBuf {
        self.0.join(path.trim_start_matches('/'))
    }
}

struct StdFile(std::fs::File);

impl embedded_io::ErrorType for StdFile {
    type Error = Error;
}

impl Read for StdFile {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
        std::io::Read::read(&mut self.0, buf).map_err(from_std)
    }
}

impl Seek for StdFile {
    fn seek(&mut self, pos: SeekFrom) -> Result<u64, Error> {
        let pos = match pos {
            SeekFrom::Start(at) => std::io::SeekFrom::Start(at),
            SeekFrom::End(offset) => std::io::SeekFrom::End(offset),
            SeekFrom::Current(offset) => std::io::SeekFrom::Current(offset),
        };
        std::io::Seek::seek(&mut self.0, pos).map_err(from_std)
    }
}

impl Files for Std {
    type File = StdFile;
    fn read(&self, path: &str) -> Result<Vec<u8>, Error> {
        std::fs::read(self.path(path)).map_err(from_std)
    }
    fn read_to_string(&self, path: &str) -> Result<String, Error> {
        std::fs::read_to_string(self.path(path)).map_err(from_std)
    }
    fn metadata(&self, path: &str) -> Result<(bool, bool, u64), Error> {
        let m = std::fs::metadata(self.path(path)).map_err(from_std)?;
        Ok((
            m.is_file(),
            m.is_dir(),
            if m.is_dir() { 0 } else { m.len() },
        ))
    }
    fn read_dir(&self, path: &str) -> Result<Vec<String>, Error> {
        let mut names: Vec<String> = std::fs::read_dir(self.path(path))
            .map_err(from_std)?
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        Ok(names)
    }
    fn open(&self, path: &str) -> Result<StdFile, Error> {
        std::fs::File::open(self.path(path))
            .map(StdFile)
            .map_err(from_std)
    }
}

/// The folder both sides read.
fn tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("dir/sub")).unwrap();
    std::fs::write(root.join("hello.txt"), "hello\n").unwrap();
    std::fs::write(root.join("dir/nested.txt"), "nested text").unwrap();
    std::fs::write(root.join("dir/a"), "").unwrap();
    std::fs::write(root.join("dir/sub/deep.txt"), "deep").unwrap();
    std::fs::write(
        root.join("binary.bin"),
        [0xff, 0xfe, 0, 1, 2, 3, 4, 5, 6, 7],
    )
    .unwrap();
    dir
}

/// A newc archive of `root`, parents before children, names relative to it.
fn pack(root: &Path) -> &'static [u8] {
    fn walk(root: &Path, dir: &Path, out: &mut std::io::Cursor<Vec<u8>>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for path in entries {
            let name = path
                .strip_prefix(root)
                .unwrap()
                .to_str()
                .unwrap()
                .to_string();
            if path.is_dir() {
                let builder = ::cpio::newc::Builder::new(&name).mode(0o040755);
                builder.write(&mut *out, 0).finish().unwrap();
                walk(root, &path, out);
            } else {
                let data = std::fs::read(&path).unwrap();
                let builder = ::cpio::newc::Builder::new(&name).mode(0o100644);
                let mut writer = builder.write(&mut *out, data.len() as u32);
                std::io::Write::write_all(&mut writer, &data).unwrap();
                writer.finish().unwrap();
            }
        }
    }
    let mut out = std::io::Cursor::new(Vec::new());
    walk(root, root, &mut out);
    ::cpio::newc::trailer(&mut out).unwrap();
    Box::leak(out.into_inner().into_boxed_slice())
}

/// The tree `examples/files` boots with, and the lines std gives for it.
fn example_tree() -> (PathBuf, PathBuf) {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/files");
    (example.join("tree"), example.join("expected.txt"))
}

#[test]
fn the_api_behaves_as_std_on_the_same_tree() {
    let (tree, expected) = example_tree();
    let fs = Fs::from_archive(pack(&tree)).unwrap();
    let ours = exercise(&fs);
    let std_side = exercise(&Std(tree.clone()));
    assert_eq!(ours.len(), std_side.len());
    for (ours, theirs) in ours.iter().zip(&std_side) {
        assert_eq!(ours, theirs);
    }
    // The body checks real outcomes, not only agreement.
    for line in [
        "read hello.txt: Ok([104, 101, 108, 108, 111, 10])",
        "read missing: Err(NotFound)",
        "read dir: Err(IsADirectory)",
        "read_to_string binary.bin: Err(InvalidData)",
        "read hello.txt/x: Err(NotADirectory)",
        "read_dir \"dir\": Ok([\"a\", \"nested.txt\", \"sub\"])",
        "file step 4: Err(InvalidInput)",
    ] {
        assert!(ours.iter().any(|l| l == line), "missing: {line}");
    }
    // What the guest must print (runner/tests/storage.rs boots examples/files).
    let text = std_side.join("\n") + "\n";
    if std::env::var_os("UNIKERNEL_BLESS").is_some() {
        std::fs::write(&expected, &text).unwrap();
    }
    let golden = std::fs::read_to_string(&expected).unwrap_or_default();
    assert_eq!(
        golden,
        text,
        "{} is not what std gives; regenerate it with UNIKERNEL_BLESS=1 cargo test -p unikernel-fs",
        expected.display()
    );
}

#[test]
fn dot_dot_stops_at_the_root_as_on_linux() {
    let dir = tree();
    let fs = Fs::from_archive(pack(dir.path())).unwrap();
    assert_eq!(fs.str("/../../hello.txt").unwrap(), "hello\n");
    assert_eq!(fs.str("dir/../../dir/sub/deep.txt").unwrap(), "deep");
    assert_eq!(fs.read_dir("/..").unwrap().count(), 3);
    assert_eq!(fs.read("../../etc/passwd"), Err(Error::NotFound));
}

#[test]
fn files_are_served_from_the_archive_without_a_copy() {
    let dir = tree();
    let archive = pack(dir.path());
    let fs = Fs::from_archive(archive).unwrap();
    let bytes = fs.bytes("/dir/sub/deep.txt").unwrap();
    let inside = archive.as_ptr_range();
    assert!(
        inside.contains(&bytes.as_ptr()),
        "the slice points into the archive"
    );
    assert_eq!(bytes, b"deep");
    let file = File::open(&fs, "hello.txt").unwrap();
    assert!(inside.contains(&file.as_bytes().as_ptr()));
    assert_eq!(fs.str("hello.txt").unwrap(), "hello\n");
}

#[test]
fn directory_listings_carry_kinds_and_sizes() {
    let dir = tree();
    let fs = Fs::from_archive(pack(dir.path())).unwrap();
    let listing: Vec<_> = fs
        .read_dir("/dir")
        .unwrap()
        .map(|e| (e.path(), e.file_type(), e.metadata().len()))
        .collect();
    assert_eq!(
        listing,
        [
            ("/dir/a".to_string(), FileType::File, 0),
            ("/dir/nested.txt".to_string(), FileType::File, 11),
            ("/dir/sub".to_string(), FileType::Dir, 0),
        ]
    );
}

fn archive_of(entries: &[(&str, u32, &[u8])]) -> &'static [u8] {
    let mut out = std::io::Cursor::new(Vec::new());
    for (name, mode, data) in entries {
        let builder = ::cpio::newc::Builder::new(name)
            .mode(*mode)
            .mtime(1_700_000_000);
        let mut writer = builder.write(&mut out, data.len() as u32);
        std::io::Write::write_all(&mut writer, data).unwrap();
        writer.finish().unwrap();
    }
    ::cpio::newc::trailer(&mut out).unwrap();
    Box::leak(out.into_inner().into_boxed_slice())
}

#[test]
fn parents_the_archive_omits_are_directories() {
    let fs = Fs::from_archive(archive_of(&[("./www/css/site.css", 0o100644, b"body{}")])).unwrap();
    assert!(fs.metadata("/www").unwrap().is_dir());
    assert!(fs.metadata("/www/css").unwrap().is_dir());
    assert_eq!(
        fs.metadata("www/css/site.css").unwrap().modified(),
        1_700_000_000
    );
    let names: Vec<_> = fs.read_dir("/").unwrap().map(|e| e.file_name()).collect();
    assert_eq!(names, ["www"]);
}

#[test]
fn names_that_climb_out_or_nest_under_a_file_are_refused() {
    let error = Fs::from_archive(archive_of(&[("../etc/passwd", 0o100644, b"x")])).unwrap_err();
    assert_eq!(error.reason, Reason::NameOutsideRoot);
    assert_eq!(error.offset, 0);
    let error = Fs::from_archive(archive_of(&[
        ("a", 0o100644, b"file"),
        ("a/b", 0o100644, b"under a file"),
    ]))
    .unwrap_err();
    assert_eq!(error.reason, Reason::BadName);
    assert!(error.offset > 0);
}

#[test]
fn links_are_listed_not_read() {
    let fs = Fs::from_archive(archive_of(&[
        ("target", 0o100644, b"t"),
        ("link", 0o120777, b"target"),
    ]))
    .unwrap();
    assert_eq!(fs.metadata("link").unwrap().file_type(), FileType::Other);
    assert_eq!(fs.read("link"), Err(Error::Unsupported));
    assert_eq!(File::open(&fs, "link").map(|_| ()), Err(Error::Unsupported));
}

#[test]
fn a_later_entry_replaces_an_earlier_one() {
    let fs = Fs::from_archive(archive_of(&[
        ("f", 0o100644, b"first"),
        ("f", 0o100644, b"second"),
    ]))
    .unwrap();
    assert_eq!(fs.str("f").unwrap(), "second");
}

#[test]
fn init_names_what_is_missing_or_broken() {
    let empty = init(None).unwrap();
    assert_eq!(empty.read_dir("/").unwrap().count(), 0);
    assert_eq!(empty.read("index.html"), Err(Error::NotFound));
    assert!(NO_INITRD.contains("--files <dir>"));
    let error = init(Some(b"070701garbage")).unwrap_err();
    assert_eq!(
        error.to_string(),
        "the initrd: corrupt cpio archive at offset 0: the archive ends inside this entry"
    );
}

#[test]
fn buffered_reads_see_the_archive_in_place() {
    let fs = Fs::from_archive(archive_of(&[("f", 0o100644, b"line one\nline two\n")])).unwrap();
    let mut file = File::open(&fs, "f").unwrap();
    assert_eq!(file.fill_buf().unwrap(), b"line one\nline two\n");
    file.consume(9);
    assert_eq!(file.fill_buf().unwrap(), b"line two\n");
    let mut rest = Vec::new();
    assert_eq!(file.read_to_end(&mut rest), Ok(9));
    assert_eq!(rest, b"line two\n");
}
