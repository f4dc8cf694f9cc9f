//! The Linux side of `benches/storage.sh`: the unikernel's storage workloads as a std
//! program, so that a Linux VM under the same QEMU, on the same kind of virtio-blk device
//! and FAT image, does the same work.
//!
//! - `storage-linux roundtrip DIR MIB`: examples/disk-io `--roundtrip`: writes a file of
//!   MIB MiB of the same pattern (1 MiB at a time, CRC-32 over it), `fsync`s it, drops the
//!   page cache (`sync`, then 3 into /proc/sys/vm/drop_caches) so that the read comes from
//!   the device, and reads it back through a 1 MiB buffer with its CRC-32;
//! - `storage-linux small DIR COUNT`: examples/disk-io `--small`: COUNT times create, write
//!   1 KiB, `fsync`; then (the page cache dropped) read each, then remove each;
//! - `storage-linux throughput FILE`: examples/files `--throughput`'s copying read: the file
//!   whole through a 64 KiB buffer, at least 64 MiB in all, with a byte sum.
//!
//! Each prints one `storage-linux: ...` line shaped as the guest's and exits 0 when every
//! check held.
#![forbid(unsafe_code)]

use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

// examples/disk-io's pattern and report lines (it names `alloc`, as a no_std crate does).
extern crate alloc;
#[path = "../../../examples/disk-io/src/workload.rs"]
mod workload;

use workload::{Roundtrip, pattern, small_files_line};

const MIB: usize = 1 << 20;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match words.as_slice() {
        ["roundtrip", dir, mib] => parse(mib).and_then(|mib| roundtrip(Path::new(dir), mib)),
        ["small", dir, count] => parse(count).and_then(|count| small(Path::new(dir), count)),
        ["throughput", file] => throughput(Path::new(file)),
        _ => {
            Err("usage: storage-linux roundtrip DIR MIB | small DIR COUNT | throughput FILE".into())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            println!("storage-linux: {error}");
            ExitCode::FAILURE
        }
    }
}

fn parse(number: &str) -> Result<usize, String> {
    number
        .parse()
        .map_err(|_| format!("{number:?} is not a count"))
}

/// Writes what is dirty and empties the page cache, so that the next reads reach the
/// device, as the unikernel's (which has no page cache) do.
fn drop_caches() -> Result<(), String> {
    let sync = std::process::Command::new("sync")
        .status()
        .map_err(|error| format!("sync: {error}"))?;
    if !sync.success() {
        return Err("sync failed".into());
    }
    std::fs::write("/proc/sys/vm/drop_caches", "3")
        .map_err(|error| format!("dropping the page cache: {error}"))
}

fn roundtrip(dir: &Path, mib: usize) -> Result<(), String> {
    let path = dir.join("roundtrip.bin");
    let mut buf = vec![0u8; MIB];
    let start = Instant::now();
    let mut written = crc32fast::Hasher::new();
    let mut file = File::create(&path).map_err(|error| format!("creating: {error}"))?;
    for chunk in 0..mib {
        pattern(chunk, &mut buf);
        written.update(&buf);
        file.write_all(&buf)
            .map_err(|error| format!("writing {mib} MiB failed: {error}"))?;
    }
    file.sync_all()
        .map_err(|error| format!("syncing failed: {error}"))?;
    drop(file);
    let write_time = start.elapsed();
    drop_caches()?;
    let start = Instant::now();
    let mut read = crc32fast::Hasher::new();
    let mut total = 0;
    let mut file = File::open(&path).map_err(|error| format!("opening: {error}"))?;
    loop {
        let n = file
            .read(&mut buf)
            .map_err(|error| format!("reading back failed: {error}"))?;
        if n == 0 {
            break;
        }
        read.update(&buf[..n]);
        total += n;
    }
    let roundtrip = Roundtrip::new(mib, (write_time, written), (total, start.elapsed(), read));
    println!("storage-linux: {}", roundtrip.line());
    if roundtrip.intact() {
        Ok(())
    } else {
        Err("the file read back differs from what was written".into())
    }
}

fn small(dir: &Path, count: usize) -> Result<(), String> {
    let dir = dir.join("small");
    let _ = std::fs::create_dir(&dir);
    let body = [0x5au8; 1024];
    let start = Instant::now();
    for i in 0..count {
        let path = dir.join(format!("f{i}"));
        File::create(&path)
            .and_then(|mut file| {
                file.write_all(&body)?;
                file.sync_all()
            })
            .map_err(|error| format!("creating {} failed: {error}", path.display()))?;
    }
    let created = start.elapsed();
    drop_caches()?;
    let start = Instant::now();
    for i in 0..count {
        let path = dir.join(format!("f{i}"));
        if std::fs::read(&path).map(|bytes| bytes.len()).ok() != Some(1024) {
            return Err(format!("{} does not read back", path.display()));
        }
    }
    let read = start.elapsed();
    let start = Instant::now();
    for i in 0..count {
        let path = dir.join(format!("f{i}"));
        std::fs::remove_file(&path)
            .map_err(|error| format!("removing {} failed: {error}", path.display()))?;
    }
    println!(
        "storage-linux: {}",
        small_files_line(count, created, read, start.elapsed())
    );
    Ok(())
}

fn throughput(path: &Path) -> Result<(), String> {
    let size = std::fs::metadata(path)
        .map_err(|error| format!("cannot read {}: {error}", path.display()))?
        .len() as usize;
    let rounds = (64 << 20) / size.max(1) + 1;
    let mut buffer = [0u8; 64 * 1024];
    let start = Instant::now();
    let mut sum = 0u64;
    for _ in 0..rounds {
        let mut file =
            File::open(path).map_err(|error| format!("cannot open {}: {error}", path.display()))?;
        while let Ok(n @ 1..) = file.read(&mut buffer) {
            sum = buffer[..n]
                .iter()
                .fold(sum, |sum, &byte| sum.wrapping_add(byte.into()));
        }
    }
    let elapsed = start.elapsed();
    println!(
        "storage-linux: throughput {} {size} bytes x {rounds}: read {:.1} MB/s, sum {sum}",
        path.display(),
        (size * rounds) as f64 / elapsed.as_secs_f64().max(1e-9) / 1e6,
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_pattern_is_the_guests_bytes_and_the_lines_its_words() {
        // examples/disk-io --roundtrip 4 printed `crc32 written fa21bd0f` in the guest.
        let mut buf = vec![0u8; MIB];
        let mut crc = crc32fast::Hasher::new();
        for chunk in 0..4 {
            pattern(chunk, &mut buf);
            crc.update(&buf);
        }
        let written = crc.clone();
        assert_eq!(written.clone().finalize(), 0xfa21_bd0f);
        let second = Duration::from_secs(1);
        let roundtrip = Roundtrip::new(4, (second, written), (4 * MIB, second / 2, crc));
        assert!(roundtrip.intact());
        assert_eq!(
            roundtrip.line(),
            "roundtrip 4 MiB: write 4.2 MB/s, read 8.4 MB/s, crc32 written fa21bd0f read fa21bd0f, 4194304 bytes"
        );
        assert_eq!(
            small_files_line(10, second, second / 10, second * 2),
            "small files x10: create+write+sync 10/s, read 100/s, remove 5/s"
        );
    }
}
