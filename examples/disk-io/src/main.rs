//! The disk under load, for `runner/tests/storage.rs` and `benches/storage.sh`:
//!
//! - `--roundtrip <MiB>`: writes a file of that size (a deterministic pattern, 1 MiB at a
//!   time), syncs it, reads it back, and prints both CRC-32s and the rates;
//! - `--fill`: writes `/keep`, then a file until the disk is full, prints the error, and
//!   checks that `/keep` is intact and the space comes back when the file is removed;
//! - `--small <count>`: creates, syncs, reads and removes that many 1 KiB files, and prints
//!   the operations per second;
//! - `--conformance`: the writable file-API body `libs/disk`'s tests run against
//!   `std::fs`, one line per result between `disk-io: begin` and `disk-io: end` (what std
//!   gives is `expected.txt`).
//!
//! Each prints one `disk-io: ...` line per figure and exits 0 when every check held.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::format;
use alloc::vec;
use unikernel::disk::{ErrorKind, File, Read, Write};
use unikernel::prelude::*;

mod workload;

use workload::{Roundtrip, pattern, small_files_line};

const MIB: usize = 1 << 20;

#[unikernel(console, heap = "8 MiB", args, clock, disk)]
fn main(args: Args, disk: Disk) -> ExitCode {
    let ok = if let Some(mib) = args.value_of("roundtrip") {
        roundtrip(&disk, mib.parse().unwrap_or(1))
    } else if args.iter().any(|arg| arg == "--fill") {
        fill(&disk)
    } else if args.iter().any(|arg| arg == "--conformance") {
        println!("disk-io: begin");
        for line in unikernel::disk::conformance::exercise(&disk) {
            println!("{line}");
        }
        println!("disk-io: end");
        true
    } else if let Some(count) = args.value_of("small") {
        small(&disk, count.parse().unwrap_or(100))
    } else {
        println!("disk-io: give --roundtrip <MiB>, --fill or --small <count>");
        false
    };
    println!("disk-io: {} interrupts", unikernel::disk::interrupts());
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn roundtrip(disk: &Disk, mib: usize) -> bool {
    let mut buf = vec![0u8; MIB];
    let start = Instant::now();
    let mut written = crc32fast::Hasher::new();
    let result: Result<(), unikernel::disk::Error> = (|| {
        let mut file = File::create(disk, "/roundtrip.bin")?;
        for chunk in 0..mib {
            pattern(chunk, &mut buf);
            written.update(&buf);
            file.write_all(&buf)?;
        }
        file.sync_all()
    })();
    if let Err(error) = result {
        println!("disk-io: writing {mib} MiB failed: {error}");
        return false;
    }
    let write_time = start.elapsed();
    let start = Instant::now();
    let mut read = crc32fast::Hasher::new();
    let mut total = 0;
    let result: Result<(), unikernel::disk::Error> = (|| {
        let mut file = File::open(disk, "/roundtrip.bin")?;
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                return Ok(());
            }
            read.update(&buf[..n]);
            total += n;
        }
    })();
    if let Err(error) = result {
        println!("disk-io: reading back failed: {error}");
        return false;
    }
    let roundtrip = Roundtrip::new(mib, (write_time, written), (total, start.elapsed(), read));
    println!("disk-io: {}", roundtrip.line());
    roundtrip.intact()
}

fn fill(disk: &Disk) -> bool {
    if let Err(error) = disk.write("/keep", b"precious").and_then(|()| disk.sync()) {
        println!("disk-io: cannot write /keep: {error}");
        return false;
    }
    let mut buf = vec![0u8; 64 * 1024];
    pattern(0, &mut buf);
    let mut file = match File::create(disk, "/filler.bin") {
        Ok(file) => file,
        Err(error) => {
            println!("disk-io: cannot create /filler.bin: {error}");
            return false;
        }
    };
    let mut written = 0usize;
    let error = loop {
        match file.write(&buf) {
            Ok(0) => {
                println!("disk-io: a write of nothing before the disk was full");
                return false;
            }
            Ok(n) => written += n,
            Err(error) => break error,
        }
    };
    drop(file);
    println!("disk-io: full after {written} bytes: {error}");
    let keep = disk.read("/keep");
    let removed = disk.remove_file("/filler.bin");
    let again = disk
        .write("/after", b"room again")
        .and_then(|()| disk.read("/after"));
    println!(
        "disk-io: /keep {}, removed {}, writing again {}",
        if keep.as_deref() == Ok(b"precious") {
            "intact"
        } else {
            "DAMAGED"
        },
        if removed.is_ok() { "ok" } else { "FAILED" },
        if again.as_deref() == Ok(b"room again") {
            "ok"
        } else {
            "FAILED"
        },
    );
    error.kind() == ErrorKind::StorageFull
        && keep.as_deref() == Ok(b"precious")
        && removed.is_ok()
        && again.is_ok()
}

fn small(disk: &Disk, count: usize) -> bool {
    let _ = disk.create_dir("/small");
    let body = [0x5au8; 1024];
    let start = Instant::now();
    for i in 0..count {
        let path = format!("/small/f{i}");
        let synced = File::create(disk, &path).and_then(|mut file| {
            file.write_all(&body)?;
            file.sync_all()
        });
        if let Err(error) = synced {
            println!("disk-io: creating {path} failed: {error}");
            return false;
        }
    }
    let created = start.elapsed();
    let start = Instant::now();
    for i in 0..count {
        if disk.read(&format!("/small/f{i}")).map(|b| b.len()) != Ok(1024) {
            println!("disk-io: /small/f{i} does not read back");
            return false;
        }
    }
    let read = start.elapsed();
    let start = Instant::now();
    for i in 0..count {
        if let Err(error) = disk.remove_file(&format!("/small/f{i}")) {
            println!("disk-io: removing /small/f{i} failed: {error}");
            return false;
        }
    }
    println!(
        "disk-io: {}",
        small_files_line(count, created, read, start.elapsed())
    );
    true
}
