//! Read-only files from the initrd (`fs`): runs the file-API body that
//! `libs/fs`'s tests also run against `std::fs` on the host, and prints one line per
//! result between `files: begin` and `files: end` (`runner/tests/storage.rs` compares them
//! with `expected.txt`, which is what std gives for `tree/`).
//!
//! With `--throughput <path>` it reads that file instead, for `benches/storage.sh`: through
//! `File::read` into a 64 KiB buffer (a copy) and through `Fs::bytes` (in place), and
//! prints MB/s for each.
#![no_std]
#![no_main]

use unikernel::fs::{File, Read};
use unikernel::prelude::*;

#[unikernel(console, heap = "1 MiB", args, clock, fs)]
fn main(args: Args, fs: Fs) -> ExitCode {
    if let Some(path) = args.value_of("throughput") {
        return throughput(&fs, path);
    }
    println!("files: begin");
    for line in unikernel::fs::conformance::exercise(&fs) {
        println!("{line}");
    }
    println!("files: end");
    ExitCode::SUCCESS
}

/// Reads `path` whole through a copy and in place, at least 64 MiB each way, and prints
/// the rates with a checksum (so that neither read can be left out).
fn throughput(fs: &Fs, path: &str) -> ExitCode {
    let Ok(bytes) = fs.bytes(path) else {
        println!("files: cannot read {path}");
        return ExitCode::from(2);
    };
    let rounds = (64 << 20) / bytes.len().max(1) + 1;
    let mut buffer = [0u8; 64 * 1024];

    let start = Instant::now();
    let mut copied_sum = 0u64;
    for _ in 0..rounds {
        let Ok(mut file) = File::open(fs, path) else {
            return ExitCode::from(2);
        };
        while let Ok(n @ 1..) = file.read(&mut buffer) {
            copied_sum = buffer[..n]
                .iter()
                .fold(copied_sum, |sum, &byte| sum.wrapping_add(byte.into()));
        }
    }
    let copied = start.elapsed();

    let start = Instant::now();
    let mut in_place_sum = 0u64;
    for _ in 0..rounds {
        in_place_sum = bytes
            .iter()
            .fold(in_place_sum, |sum, &byte| sum.wrapping_add(byte.into()));
    }
    let in_place = start.elapsed();

    let total = (bytes.len() * rounds) as f64;
    let rate = |elapsed: Duration| total / elapsed.as_secs_f64().max(1e-9) / 1e6;
    println!(
        "files: throughput {path} {} bytes x {rounds}: read {:.1} MB/s, in place {:.1} MB/s, sums {}",
        bytes.len(),
        rate(copied),
        rate(in_place),
        if copied_sum == in_place_sum {
            "agree"
        } else {
            "DIFFER"
        },
    );
    ExitCode::SUCCESS
}
