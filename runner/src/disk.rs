//! The guest's storage on the host: the initrd packed from a folder (`--files`), and
//! disk images (`--disk`).
//!
//! The initrd is a newc cpio archive (the format Linux's initramfs uses), written with the
//! `cpio` crate: a directory entry before what it holds, names relative to the folder with
//! `/` between components, entries sorted so that the same folder packs to the same bytes.

use std::io::{BufWriter, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// A temporary initrd packed from a folder; removed when dropped (and by the next run after
/// a crash: see [`crate::cleanup`]).
#[derive(Debug)]
pub struct PackedInitrd {
    file: tempfile::NamedTempFile,
    /// How many files and directories it holds.
    pub entries: usize,
}

impl PackedInitrd {
    pub fn path(&self) -> &Path {
        self.file.path()
    }
}

/// What `--files PATH` names: a folder to pack, or an archive to pass as it is.
#[derive(Debug)]
pub enum Initrd {
    Packed(PackedInitrd),
    Archive(PathBuf),
}

impl Initrd {
    /// Packs `path` if it is a folder; takes it as a ready archive if it is a file.
    pub fn from_path(path: &Path) -> Result<Self> {
        let metadata = std::fs::metadata(path)
            .map_err(|err| Error::new(format!("--files {}: {err}", path.display())))?;
        if metadata.is_dir() {
            pack(path).map(Initrd::Packed)
        } else {
            Ok(Initrd::Archive(path.to_path_buf()))
        }
    }

    pub fn path(&self) -> &Path {
        match self {
            Initrd::Packed(packed) => packed.path(),
            Initrd::Archive(path) => path,
        }
    }
}

/// Packs the folder at `root` into a temporary newc cpio archive.
pub fn pack(root: &Path) -> Result<PackedInitrd> {
    let file = crate::cleanup::temp_file("-initrd.cpio")
        .map_err(|err| Error::new(format!("cannot create a temporary file: {err}")))?;
    let entries = write_archive(root, file.as_file())?;
    Ok(PackedInitrd { file, entries })
}

/// Writes the archive of `root` to `out`; returns how many entries it holds.
pub fn write_archive(root: &Path, out: impl Write) -> Result<usize> {
    let mut out = BufWriter::new(out);
    let mut entries = 0;
    let mut inode = 1;
    walk(root, root, &mut out, &mut entries, &mut inode)?;
    cpio::newc::trailer(out)
        .and_then(|mut out| out.flush())
        .map_err(|err| Error::new(format!("cannot write the initrd: {err}")))?;
    Ok(entries)
}

/// The paths in folder `dir`, sorted, so that what is made from them is the same on every
/// run (the initrd's and the OCI layer's order).
pub(crate) fn sorted_children(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut children = std::fs::read_dir(dir)?
        .map(|entry| entry.map(|entry| entry.path()))
        .collect::<std::io::Result<Vec<_>>>()?;
    children.sort();
    Ok(children)
}

fn walk(
    root: &Path,
    dir: &Path,
    out: &mut impl Write,
    entries: &mut usize,
    inode: &mut u32,
) -> Result<()> {
    let cannot = |path: &Path, err: std::io::Error| {
        Error::new(format!("--files: cannot read {}: {err}", path.display()))
    };
    for path in sorted_children(dir).map_err(|err| cannot(dir, err))? {
        let relative = path.strip_prefix(root).expect("a child of the root");
        let name = relative
            .to_str()
            .ok_or_else(|| {
                Error::new(format!(
                    "--files: {} is not UTF-8, which the guest's paths are",
                    path.display()
                ))
            })?
            .to_string();
        // Links are followed: the guest sees what they point at.
        let metadata = std::fs::metadata(&path).map_err(|err| cannot(&path, err))?;
        let builder = cpio::newc::Builder::new(&name)
            .ino(*inode)
            .mode(metadata.mode())
            .mtime(u32::try_from(metadata.mtime()).unwrap_or(0))
            .nlink(1);
        *inode += 1;
        *entries += 1;
        let write_error =
            |err: std::io::Error| Error::new(format!("cannot write the initrd: {err}"));
        if metadata.is_dir() {
            builder.write(&mut *out, 0).finish().map_err(write_error)?;
            walk(root, &path, out, entries, inode)?;
        } else if metadata.is_file() {
            let size = u32::try_from(metadata.len()).map_err(|_| {
                Error::new(format!(
                    "--files: {} is 4 GiB or larger, more than a cpio entry holds",
                    path.display()
                ))
            })?;
            let mut source = std::fs::File::open(&path).map_err(|err| cannot(&path, err))?;
            let mut writer = builder.write(&mut *out, size);
            let copied =
                std::io::copy(&mut source, &mut writer).map_err(|err| cannot(&path, err))?;
            if copied != u64::from(size) {
                return Err(Error::new(format!(
                    "--files: {} changed while it was packed",
                    path.display()
                )));
            }
            writer.finish().map_err(write_error)?;
        } else {
            return Err(Error::new(format!(
                "--files: {} is neither a file nor a folder",
                path.display()
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    /// Names, modes and contents, read back with the `cpio` crate's reader.
    fn read_back(bytes: &[u8]) -> Vec<(String, bool, Vec<u8>)> {
        let mut list = Vec::new();
        let mut rest = bytes;
        loop {
            let mut reader = cpio::NewcReader::new(rest).unwrap();
            if reader.entry().is_trailer() {
                return list;
            }
            let name = reader.entry().name().to_string();
            let is_dir = reader.entry().mode() & 0o170000 == 0o040000;
            let mut data = Vec::new();
            reader.read_to_end(&mut data).unwrap();
            list.push((name, is_dir, data));
            rest = reader.finish().unwrap();
        }
    }

    #[test]
    fn packs_a_folder_parents_first_in_a_stable_order() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("css")).unwrap();
        std::fs::write(dir.path().join("index.html"), "<h1>hi</h1>").unwrap();
        std::fs::write(dir.path().join("css/site.css"), "body{}").unwrap();
        let mut bytes = Vec::new();
        assert_eq!(write_archive(dir.path(), &mut bytes).unwrap(), 3);
        assert_eq!(
            read_back(&bytes),
            [
                ("css".to_string(), true, vec![]),
                ("css/site.css".to_string(), false, b"body{}".to_vec()),
                ("index.html".to_string(), false, b"<h1>hi</h1>".to_vec()),
            ]
        );
        let mut again = Vec::new();
        write_archive(dir.path(), &mut again).unwrap();
        assert_eq!(bytes, again, "the same folder packs to the same bytes");
    }

    #[test]
    fn a_file_is_passed_as_it_is_and_a_folder_is_packed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a"), "x").unwrap();
        let packed = Initrd::from_path(dir.path()).unwrap();
        assert!(matches!(
            packed,
            Initrd::Packed(PackedInitrd { entries: 1, .. })
        ));
        assert!(packed.path().exists());
        let archive = dir.path().join("a");
        assert!(matches!(Initrd::from_path(&archive).unwrap(), Initrd::Archive(p) if p == archive));
        let missing = Initrd::from_path(&dir.path().join("nope")).unwrap_err();
        assert!(missing.to_string().starts_with("--files "), "{missing}");
    }
}

/// Parses a disk size: a number of bytes with an optional binary unit (`64MiB`, `1 GiB`,
/// `512K`); at least 1 MiB (the smallest FAT volume worth having), at most 2 TiB (FAT32's
/// limit with 512-byte sectors).
pub fn parse_size(text: &str) -> std::result::Result<u64, String> {
    let text = text.trim();
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("expected a size such as 64MiB, not `{text}`"))?;
    let scale: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "t" | "tib" => 1 << 40,
        other => return Err(format!("unknown unit `{other}`: use KiB, MiB, GiB or TiB")),
    };
    let bytes = number
        .checked_mul(scale)
        .ok_or_else(|| format!("{text} is too large"))?;
    if bytes < 1 << 20 {
        return Err(format!("{text} is too small: a disk is at least 1MiB"));
    }
    if bytes > 2 << 40 {
        return Err(format!("{text} is too large: FAT holds at most 2TiB"));
    }
    Ok(bytes)
}

/// Creates a FAT disk image of `size` bytes at `image` (refusing to replace a file), with
/// the contents of the folder `from` copied in when given. Returns how many files and
/// folders were copied.
pub fn create_image(image: &Path, size: u64, from: Option<&Path>) -> Result<usize> {
    let cannot = |what: &str, err: &dyn std::fmt::Display| {
        Error::new(format!("cannot {what} {}: {err}", image.display()))
    };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(image)
        .map_err(|err| cannot("create", &err))?;
    let result = (|| {
        file.set_len(size).map_err(|err| cannot("size", &err))?;
        fatfs::format_volume(&file, fatfs::FormatVolumeOptions::new())
            .map_err(|err| cannot("format", &err))?;
        let Some(from) = from else {
            return Ok(0);
        };
        let fs = fatfs::FileSystem::new(&file, fatfs::FsOptions::new())
            .map_err(|err| cannot("open", &err))?;
        let copied = copy_into(&fs.root_dir(), from)?;
        fs.unmount().map_err(|err| cannot("write", &err))?;
        file.sync_all().map_err(|err| cannot("write", &err))?;
        Ok(copied)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(image);
    }
    result
}

fn copy_into<IO: fatfs::ReadWriteSeek>(dir: &fatfs::Dir<'_, IO>, from: &Path) -> Result<usize> {
    let cannot = |path: &Path, err: &dyn std::fmt::Display| {
        Error::new(format!("--from: cannot copy {}: {err}", path.display()))
    };
    let mut children: Vec<PathBuf> = std::fs::read_dir(from)
        .map_err(|err| cannot(from, &err))?
        .map(|entry| entry.map(|entry| entry.path()))
        .collect::<std::io::Result<_>>()
        .map_err(|err| cannot(from, &err))?;
    children.sort();
    let mut copied = 0;
    for path in children {
        let name = path
            .file_name()
            .and_then(|name| name.to_str())
            .ok_or_else(|| cannot(&path, &"the name is not UTF-8"))?;
        let metadata = std::fs::metadata(&path).map_err(|err| cannot(&path, &err))?;
        if metadata.is_dir() {
            let sub = dir.create_dir(name).map_err(|err| cannot(&path, &err))?;
            copied += 1 + copy_into(&sub, &path)?;
        } else {
            let mut target = dir.create_file(name).map_err(|err| cannot(&path, &err))?;
            target.truncate().map_err(|err| cannot(&path, &err))?;
            let mut source = std::fs::File::open(&path).map_err(|err| cannot(&path, &err))?;
            std::io::copy(&mut source, &mut target).map_err(|err| cannot(&path, &err))?;
            target.flush().map_err(|err| cannot(&path, &err))?;
            copied += 1;
        }
    }
    Ok(copied)
}

#[cfg(test)]
mod image_tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn sizes_take_binary_units_and_stay_in_range() {
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("64 MiB"), Ok(64 << 20));
        assert_eq!(parse_size("2g"), Ok(2 << 30));
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        assert!(parse_size("512K").unwrap_err().contains("at least 1MiB"));
        assert!(parse_size("3TiB").unwrap_err().contains("at most 2TiB"));
        assert!(
            parse_size("64MB")
                .unwrap_err()
                .contains("unknown unit `mb`")
        );
        assert!(parse_size("lots").is_err());
    }

    #[test]
    fn an_image_is_a_fat_volume_holding_the_folder() {
        let dir = tempfile::tempdir().unwrap();
        let from = dir.path().join("from");
        std::fs::create_dir_all(from.join("config")).unwrap();
        std::fs::write(from.join("config/app.toml"), "port = 80\n").unwrap();
        std::fs::write(from.join("a long file name.txt"), vec![7u8; 100_000]).unwrap();
        let image = dir.path().join("data.img");
        assert_eq!(create_image(&image, 8 << 20, Some(&from)).unwrap(), 3);
        assert_eq!(std::fs::metadata(&image).unwrap().len(), 8 << 20);

        let file = std::fs::File::open(&image).unwrap();
        let fs = fatfs::FileSystem::new(file, fatfs::FsOptions::new()).unwrap();
        let mut text = String::new();
        fs.root_dir()
            .open_file("config/app.toml")
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "port = 80\n");
        let mut long = Vec::new();
        fs.root_dir()
            .open_file("a long file name.txt")
            .unwrap()
            .read_to_end(&mut long)
            .unwrap();
        assert_eq!(long, vec![7u8; 100_000]);

        let again = create_image(&image, 8 << 20, None).unwrap_err();
        assert!(again.to_string().contains("cannot create"), "{again}");
        assert!(image.exists(), "an existing image is left alone");
    }
}
