//! What `--roundtrip` and `--small` share with `benches/storage-linux`, which includes this
//! file so that the Linux VM of `benches/storage.sh` writes the same bytes and reports in
//! the same words (the script reads both guests' lines with one pattern each).

use alloc::format;
use alloc::string::String;
use core::time::Duration;

/// Fills `buf` with chunk `chunk`'s bytes: xorshift64, seeded per chunk.
pub fn pattern(chunk: usize, buf: &mut [u8]) {
    let mut state = (chunk as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    for word in buf.chunks_mut(8) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        word.copy_from_slice(&state.to_le_bytes()[..word.len()]);
    }
}

/// MB/s of `bytes` in `elapsed`.
fn rate(bytes: usize, elapsed: Duration) -> f64 {
    bytes as f64 / elapsed.as_secs_f64().max(1e-9) / 1e6
}

/// The roundtrip's figures: `written` bytes in `write_time`, `read` bytes in `read_time`,
/// and the CRC-32 of each.
pub struct Roundtrip {
    mib: usize,
    written: usize,
    write_time: Duration,
    read: usize,
    read_time: Duration,
    crc_written: u32,
    crc_read: u32,
}

impl Roundtrip {
    /// `mib` MiB written in `write_time` with CRC `written`, `read` bytes read back in
    /// `read_time` with CRC `read_crc`.
    pub fn new(
        mib: usize,
        (write_time, written): (Duration, crc32fast::Hasher),
        (read, read_time, read_crc): (usize, Duration, crc32fast::Hasher),
    ) -> Self {
        Roundtrip {
            mib,
            written: mib << 20,
            write_time,
            read,
            read_time,
            crc_written: written.finalize(),
            crc_read: read_crc.finalize(),
        }
    }

    /// `roundtrip 64 MiB: write .. MB/s, read .. MB/s, crc32 written .. read .., N bytes`.
    pub fn line(&self) -> String {
        format!(
            "roundtrip {} MiB: write {:.1} MB/s, read {:.1} MB/s, crc32 written {:08x} read {:08x}, {} bytes",
            self.mib,
            rate(self.written, self.write_time),
            rate(self.read, self.read_time),
            self.crc_written,
            self.crc_read,
            self.read,
        )
    }

    /// Whether every byte came back.
    pub fn intact(&self) -> bool {
        self.crc_written == self.crc_read && self.read == self.written
    }
}

/// `small files xN: create+write+sync ../s, read ../s, remove ../s` for `count` files.
pub fn small_files_line(
    count: usize,
    created: Duration,
    read: Duration,
    removed: Duration,
) -> String {
    let per_s = |elapsed: Duration| count as f64 / elapsed.as_secs_f64().max(1e-9);
    format!(
        "small files x{count}: create+write+sync {:.0}/s, read {:.0}/s, remove {:.0}/s",
        per_s(created),
        per_s(read),
        per_s(removed)
    )
}
