//! The disk's files on an image in memory, made and read back with `fatfs` (what
//! `cargo uk disk create` uses), so that what the guest writes is what host tools read.

extern crate std;

use super::*;
use alloc::vec;
use std::io::{Read as _, Write as _};

/// A fresh FAT image of `size` bytes, formatted by `fatfs`.
fn image(size: usize) -> Vec<u8> {
    let mut cursor = std::io::Cursor::new(vec![0u8; size]);
    fatfs::format_volume(&mut cursor, fatfs::FormatVolumeOptions::new()).unwrap();
    cursor.into_inner()
}

fn mount(image: Vec<u8>) -> Disk {
    Disk::mount(BlockDev::Memory(image)).unwrap()
}

fn unmount(disk: Disk) -> Vec<u8> {
    disk.unmount().unwrap().unwrap().into_image().unwrap()
}

/// `fatfs`'s view of an image: every file's path and contents.
fn host_view(image: Vec<u8>) -> Vec<(std::string::String, Vec<u8>)> {
    fn walk<IO: fatfs::ReadWriteSeek>(
        dir: fatfs::Dir<'_, IO>,
        prefix: &str,
        out: &mut Vec<(std::string::String, Vec<u8>)>,
    ) {
        for entry in dir.iter() {
            let entry = entry.unwrap();
            let name = entry.file_name();
            if name == "." || name == ".." {
                continue;
            }
            let path = std::format!("{prefix}/{name}");
            if entry.is_dir() {
                out.push((path.clone() + "/", Vec::new()));
                walk(entry.to_dir(), &path, out);
            } else {
                let mut data = Vec::new();
                entry.to_file().read_to_end(&mut data).unwrap();
                out.push((path, data));
            }
        }
    }
    let fs = fatfs::FileSystem::new(std::io::Cursor::new(image), fatfs::FsOptions::new()).unwrap();
    let mut out = Vec::new();
    walk(fs.root_dir(), "", &mut out);
    out.sort();
    out
}

#[test]
fn what_the_guest_writes_the_host_reads() {
    let disk = mount(image(8 << 20));
    disk.create_dir("/data").unwrap();
    let mut file = File::create(&disk, "/data/a long name.log").unwrap();
    file.write_all(b"first\n").unwrap();
    file.sync_all().unwrap();
    drop(file);
    let mut log = OpenOptions::new()
        .append(true)
        .open(&disk, "/data/a long name.log")
        .unwrap();
    log.write_all(b"second\n").unwrap();
    log.sync_all().unwrap();
    drop(log);
    disk.write("/data/tmp", b"replacement").unwrap();
    disk.write("/data/current", b"old").unwrap();
    disk.rename("/data/tmp", "/data/current").unwrap();
    disk.write("/gone", b"x").unwrap();
    disk.remove_file("/gone").unwrap();
    assert_eq!(
        disk.read_to_string("/data/a long name.log").unwrap(),
        "first\nsecond\n"
    );
    assert_eq!(disk.read("/data/current").unwrap(), b"replacement");
    let names: Vec<_> = disk
        .read_dir("/data")
        .unwrap()
        .iter()
        .map(|e| std::string::String::from(e.file_name()))
        .collect();
    assert_eq!(names, ["a long name.log", "current"]);
    disk.sync().unwrap();

    assert_eq!(
        host_view(unmount(disk)),
        [
            ("/data/".into(), vec![]),
            ("/data/a long name.log".into(), b"first\nsecond\n".to_vec()),
            ("/data/current".into(), b"replacement".to_vec()),
        ]
    );
}

#[test]
fn what_the_host_writes_the_guest_reads() {
    let mut cursor = std::io::Cursor::new(image(4 << 20));
    {
        let fs = fatfs::FileSystem::new(&mut cursor, fatfs::FsOptions::new()).unwrap();
        let dir = fs.root_dir().create_dir("Config Files").unwrap();
        let mut file = dir.create_file("settings.json").unwrap();
        file.write_all(br#"{"port": 80}"#).unwrap();
    }
    let disk = mount(cursor.into_inner());
    assert_eq!(
        disk.read_to_string("/Config Files/settings.json").unwrap(),
        r#"{"port": 80}"#
    );
    assert!(disk.metadata("/Config Files").unwrap().is_dir());
    assert_eq!(
        disk.metadata("/Config Files/settings.json").unwrap().len(),
        12
    );
}

#[test]
fn errors_are_named_as_std_names_them() {
    let disk = mount(image(4 << 20));
    disk.write("/file", b"x").unwrap();
    disk.create_dir("/dir").unwrap();
    disk.write("/dir/inner", b"y").unwrap();
    let kind = |result: Result<()>| result.unwrap_err().kind();
    assert_eq!(
        disk.read("/missing").unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(kind(disk.create_dir("/dir")), ErrorKind::AlreadyExists);
    assert_eq!(kind(disk.remove_dir("/dir")), ErrorKind::DirectoryNotEmpty);
    assert_eq!(
        disk.read("/dir").unwrap_err().kind(),
        ErrorKind::IsADirectory
    );
    assert_eq!(
        disk.read("/file/x").unwrap_err().kind(),
        ErrorKind::NotADirectory
    );
    assert_eq!(
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&disk, "/file")
            .unwrap_err()
            .kind(),
        ErrorKind::AlreadyExists
    );
    assert_eq!(
        File::open(&disk, "/nope").unwrap_err().kind(),
        ErrorKind::NotFound
    );
}

#[test]
fn seek_read_and_write_in_place() {
    let disk = mount(image(4 << 20));
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .open(&disk, "/f")
        .unwrap();
    file.write_all(b"0123456789").unwrap();
    assert_eq!(file.seek(SeekFrom::Start(3)).unwrap(), 3);
    file.write_all(b"abc").unwrap();
    assert_eq!(file.seek(SeekFrom::End(-2)).unwrap(), 8);
    let mut tail = [0u8; 8];
    assert_eq!(file.read(&mut tail).unwrap(), 2);
    assert_eq!(&tail[..2], b"89");
    file.set_len(4).unwrap();
    assert_eq!(file.metadata().unwrap().len(), 4);
    drop(file);
    assert_eq!(disk.read("/f").unwrap(), b"012a");
}

#[test]
fn a_full_disk_is_a_clear_error_and_what_was_there_stays() {
    let disk = mount(image(2 << 20));
    disk.write("/keep", b"precious").unwrap();
    disk.sync().unwrap();
    let mut file = File::create(&disk, "/big").unwrap();
    let chunk = vec![0xabu8; 64 * 1024];
    let error = loop {
        match file.write(&chunk) {
            Ok(0) => panic!("a write of nothing on a disk that is not full"),
            Ok(_) => {}
            Err(error) => break error,
        }
    };
    assert_eq!(error.kind(), ErrorKind::StorageFull, "{error}");
    assert!(
        std::format!("{error}").starts_with("the disk is full"),
        "{error}"
    );
    drop(file);
    assert_eq!(disk.read("/keep").unwrap(), b"precious");
    let written = disk.metadata("/big").unwrap().len();
    assert!(written > 1 << 20, "most of the disk was written: {written}");
    disk.remove_file("/big").unwrap();
    disk.write("/after", b"room again").unwrap();
    assert_eq!(disk.read("/after").unwrap(), b"room again");
}

#[test]
fn a_corrupt_image_is_an_error_at_mount_not_a_fault() {
    let blank = Disk::mount(BlockDev::Memory(vec![0u8; 1 << 20])).unwrap_err();
    assert!(matches!(blank, InitError::Mount(_)), "{blank}");
    assert!(
        std::format!("{blank}").contains("cargo uk disk create"),
        "{blank}"
    );

    // Damaged boot sectors: every byte of the first sector in turn, and random ones.
    let good = image(2 << 20);
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for round in 0..600 {
        let mut bytes = good.clone();
        if round < 512 {
            bytes[round] ^= 0xff;
        } else {
            for _ in 0..8 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let at = (state % 4096) as usize;
                bytes[at] = (state >> 40) as u8;
            }
        }
        if let Ok(disk) = Disk::mount(BlockDev::Memory(bytes)) {
            // Mounted anyway: reading must fail cleanly or work, never fault.
            let _ = disk.read_dir("/");
            let _ = disk.write("/x", b"y");
        }
    }
}

/// `std::fs` rooted at a folder, its errors named as this crate's.
struct Std(std::path::PathBuf);

fn from_std(error: std::io::Error) -> Error {
    use std::io::ErrorKind as Std;
    let kind = match error.kind() {
        Std::NotFound => ErrorKind::NotFound,
        Std::AlreadyExists => ErrorKind::AlreadyExists,
        Std::NotADirectory => ErrorKind::NotADirectory,
        Std::IsADirectory => ErrorKind::IsADirectory,
        Std::DirectoryNotEmpty => ErrorKind::DirectoryNotEmpty,
        Std::StorageFull => ErrorKind::StorageFull,
        Std::InvalidInput => ErrorKind::InvalidInput,
        Std::InvalidData => ErrorKind::InvalidData,
        other => panic!("std returned {other:?}, which the API has no name for"),
    };
    Error::new(kind, "")
}

struct StdFile(std::fs::File);

impl embedded_io::ErrorType for StdFile {
    type Error = Error;
}
impl Read for StdFile {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize> {
        std::io::Read::read(&mut self.0, buf).map_err(from_std)
    }
}
impl Write for StdFile {
    fn write(&mut self, buf: &[u8]) -> Result<usize> {
        std::io::Write::write(&mut self.0, buf).map_err(from_std)
    }
    fn flush(&mut self) -> Result<()> {
        Ok(())
    }
}
impl Seek for StdFile {
    fn seek(&mut self, pos: SeekFrom) -> Result<u64> {
        let pos = match pos {
            SeekFrom::Start(at) => std::io::SeekFrom::Start(at),
            SeekFrom::End(offset) => std::io::SeekFrom::End(offset),
            SeekFrom::Current(offset) => std::io::SeekFrom::Current(offset),
        };
        std::io::Seek::seek(&mut self.0, pos).map_err(from_std)
    }
}

impl crate::conformance::Files for Std {
    type File = StdFile;
    fn create_dir(&self, path: &str) -> Result<()> {
        std::fs::create_dir(self.0.join(path)).map_err(from_std)
    }
    fn write(&self, path: &str, data: &[u8]) -> Result<()> {
        std::fs::write(self.0.join(path), data).map_err(from_std)
    }
    fn read(&self, path: &str) -> Result<Vec<u8>> {
        std::fs::read(self.0.join(path)).map_err(from_std)
    }
    fn open(&self, path: &str, flags: &str) -> Result<StdFile> {
        std::fs::OpenOptions::new()
            .read(flags.contains('r'))
            .write(flags.contains('w'))
            .append(flags.contains('a'))
            .truncate(flags.contains('t'))
            .create(flags.contains('c'))
            .create_new(flags.contains('n'))
            .open(self.0.join(path))
            .map(StdFile)
            .map_err(from_std)
    }
    fn sync_all(&self, file: &StdFile) -> Result<()> {
        file.0.sync_all().map_err(from_std)
    }
    fn set_len(&self, file: &mut StdFile, len: u64) -> Result<()> {
        file.0.set_len(len).map_err(from_std)
    }
    fn rename(&self, from: &str, to: &str) -> Result<()> {
        std::fs::rename(self.0.join(from), self.0.join(to)).map_err(from_std)
    }
    fn remove_file(&self, path: &str) -> Result<()> {
        std::fs::remove_file(self.0.join(path)).map_err(from_std)
    }
    fn remove_dir(&self, path: &str) -> Result<()> {
        std::fs::remove_dir(self.0.join(path)).map_err(from_std)
    }
    fn read_dir(&self, path: &str) -> Result<Vec<std::string::String>> {
        let mut names: Vec<_> = std::fs::read_dir(self.0.join(path))
            .map_err(from_std)?
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        Ok(names)
    }
    fn metadata(&self, path: &str) -> Result<(bool, bool, u64)> {
        let m = std::fs::metadata(self.0.join(path)).map_err(from_std)?;
        Ok((
            m.is_file(),
            m.is_dir(),
            if m.is_dir() { 0 } else { m.len() },
        ))
    }
}

#[test]
fn the_writable_api_behaves_as_std() {
    let dir = tempfile::tempdir().unwrap();
    let std_side = crate::conformance::exercise(&Std(dir.path().to_path_buf()));
    let disk = mount(image(4 << 20));
    let ours = crate::conformance::exercise(&disk);
    for (ours, theirs) in ours.iter().zip(&std_side) {
        assert_eq!(ours, theirs);
    }
    assert_eq!(ours.len(), std_side.len());
    assert!(ours.contains(&"rename b over c: Ok(())".into()));
    assert!(ours.contains(&"remove_dir non-empty: Err(DirectoryNotEmpty)".into()));
    // What the guest must print (runner/tests/storage.rs boots examples/disk-io).
    let expected = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/disk-io/expected.txt");
    let text = std_side.join("\n") + "\n";
    if std::env::var_os("UNIKERNEL_BLESS").is_some() {
        std::fs::write(&expected, &text).unwrap();
    }
    assert_eq!(
        std::fs::read_to_string(&expected).unwrap_or_default(),
        text,
        "{} is not what std gives; regenerate it with UNIKERNEL_BLESS=1 cargo test -p unikernel-disk",
        expected.display()
    );
}

#[test]
fn damaged_tables_and_directories_are_errors_not_panics() {
    // A volume with files and folders, then noise in its FATs and directories.
    let disk = mount(image(2 << 20));
    for dir in 0..4 {
        disk.create_dir(&std::format!("/d{dir}")).unwrap();
        for file in 0..6 {
            disk.write(
                &std::format!("/d{dir}/a long file name {file}.txt"),
                &vec![dir as u8; 700 * (file + 1)],
            )
            .unwrap();
        }
    }
    let good = unmount(disk);
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..300 {
        let mut bytes = good.clone();
        for _ in 0..16 {
            // Past the boot sector: the FATs, the root directory and the first clusters.
            let at = 512 + (next() % (96 * 1024)) as usize;
            bytes[at] = next() as u8;
        }
        let Ok(disk) = Disk::mount(BlockDev::Memory(bytes)) else {
            continue;
        };
        for dir in 0..4 {
            let path = std::format!("/d{dir}");
            if let Ok(entries) = disk.read_dir(&path) {
                for entry in entries {
                    let _ = disk.read(&std::format!("{path}/{}", entry.file_name()));
                }
            }
            let _ = disk.write(&std::format!("{path}/new"), b"after the damage");
            let _ = disk.remove_file(&std::format!("{path}/a long file name 0.txt"));
        }
        let _ = disk.sync();
    }
}
