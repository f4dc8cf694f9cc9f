//! The bytes `--roundtrip` writes: xorshift64, seeded per 1 MiB chunk. `benches/storage-linux`
//! includes this file, so that the Linux VM of `benches/storage.sh` does the same work.

/// Fills `buf` with chunk `chunk`'s bytes.
pub fn pattern(chunk: usize, buf: &mut [u8]) {
    let mut state = (chunk as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    for word in buf.chunks_mut(8) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        word.copy_from_slice(&state.to_le_bytes()[..word.len()]);
    }
}
