//! The chain of return addresses a panic or a CPU exception prints, found by following
//! frame pointers (images are built with `-C force-frame-pointers=yes`).
//!
//! The guest prints raw addresses only, on one line: `backtrace: 0x1003a5 0x100410 ...`.
//! Names and source lines come from the ELF's debug info, which the image does not
//! carry at run time: the runner turns each address into `function (file:line)`.
//! Code built without frame pointers (the precompiled `core`) is skipped, not misread:
//! such a function leaves `rbp` alone, so the chain passes over it.

use core::fmt;
use core::ops::Range;

/// At most this many return addresses: enough for any real call chain, bounded for a
/// corrupted one.
pub const MAX_FRAMES: usize = 32;

/// How far above where the walk starts a frame may lie: no stack is larger.
const MAX_STACK_SPAN: u64 = 1 << 20;

/// Walks the frame-pointer chain from `rbp`, calling `each` with every return address.
///
/// A frame is two words, the caller's `rbp` at `[rbp]` and the return address at
/// `[rbp + 8]`, and `read` reads one word. The walk stops at the end of the chain (the
/// boot entry and new threads start it with `rbp = 0`), at a frame pointer that is
/// misaligned, outside `[stack_floor, stack_floor + 1 MiB)` or not above the one before,
/// at a return address outside `code`, and after [`MAX_FRAMES`]: a corrupted chain ends
/// the backtrace instead of faulting in the report.
pub fn walk(
    rbp: u64,
    stack_floor: u64,
    code: Range<u64>,
    read: impl Fn(u64) -> u64,
    mut each: impl FnMut(u64),
) {
    let stack = stack_floor..stack_floor.saturating_add(MAX_STACK_SPAN);
    let mut frame = rbp;
    for _ in 0..MAX_FRAMES {
        if !frame.is_multiple_of(8) || !stack.contains(&frame) || !stack.contains(&(frame + 8)) {
            return;
        }
        let return_address = read(frame + 8);
        if !code.contains(&return_address) {
            return;
        }
        each(return_address);
        let caller = read(frame);
        if caller <= frame {
            return;
        }
        frame = caller;
    }
}

/// The `backtrace:` line for the chain from `rbp`, as `Display`.
#[allow(missing_debug_implementations)] // `read` is a closure.
pub struct Backtrace<R> {
    pub rbp: u64,
    pub stack_floor: u64,
    pub code: Range<u64>,
    pub read: R,
}

impl<R: Fn(u64) -> u64> fmt::Display for Backtrace<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("backtrace:")?;
        let mut result = Ok(());
        walk(
            self.rbp,
            self.stack_floor,
            self.code.clone(),
            &self.read,
            |address| {
                if result.is_ok() {
                    result = write!(f, " {address:#x}");
                }
            },
        );
        result
    }
}

/// Prints the backtrace from `rbp` on the serial port. `stack_floor` is the lowest
/// address of the stack the chain lives on that is known to be in use (the stack pointer
/// where the walk starts).
#[cfg(target_os = "none")]
pub(crate) fn print(rbp: u64, stack_floor: u64) {
    let backtrace = Backtrace {
        rbp,
        stack_floor,
        code: crate::paging::code(),
        // SAFETY: `walk` reads only 8-aligned words within 1 MiB above the stack pointer
        // in use, on the chain of frames that this stack's functions pushed; every stack
        // is mapped from its guard page to its top, and the walk stops at the top frame.
        read: |address| unsafe { core::ptr::read_volatile(address as *const u64) },
    };
    crate::serial::print(format_args!("{backtrace}\n"));
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::collections::BTreeMap;
    use std::string::ToString;
    use std::vec::Vec;

    const CODE: Range<u64> = 0x10_0000..0x10_8000;

    /// A stack at 0x20_0000 with frames chained at the given offsets, each returning to
    /// the given address; the last frame's caller is 0.
    fn stack(frames: &[(u64, u64)]) -> BTreeMap<u64, u64> {
        let mut memory = BTreeMap::new();
        for (index, &(frame, return_address)) in frames.iter().enumerate() {
            let caller = frames.get(index + 1).map_or(0, |next| next.0);
            memory.insert(frame, caller);
            memory.insert(frame + 8, return_address);
        }
        memory
    }

    fn addresses(memory: &BTreeMap<u64, u64>, rbp: u64) -> Vec<u64> {
        let mut found = Vec::new();
        walk(
            rbp,
            0x20_0000,
            CODE,
            |address| memory[&address],
            |a| found.push(a),
        );
        found
    }

    #[test]
    fn follows_the_chain_to_its_end() {
        let memory = stack(&[
            (0x20_0010, 0x10_0100),
            (0x20_0040, 0x10_0200),
            (0x20_0100, 0x10_0300),
        ]);
        assert_eq!(
            addresses(&memory, 0x20_0010),
            [0x10_0100, 0x10_0200, 0x10_0300]
        );
        let line = Backtrace {
            rbp: 0x20_0010,
            stack_floor: 0x20_0000,
            code: CODE,
            read: |address| memory[&address],
        }
        .to_string();
        assert_eq!(line, "backtrace: 0x100100 0x100200 0x100300");
    }

    #[test]
    fn a_broken_chain_ends_the_walk_without_reading_outside_the_stack() {
        // A return address outside the code.
        let memory = stack(&[(0x20_0010, 0x10_0100), (0x20_0040, 0x4000)]);
        assert_eq!(addresses(&memory, 0x20_0010), [0x10_0100]);
        // A caller frame below the current one (a loop), or misaligned.
        let mut memory = stack(&[(0x20_0040, 0x10_0100)]);
        memory.insert(0x20_0040, 0x20_0010);
        assert_eq!(addresses(&memory, 0x20_0040), [0x10_0100]);
        memory.insert(0x20_0040, 0x20_0043);
        assert_eq!(addresses(&memory, 0x20_0040), [0x10_0100]);
        // A frame pointer below the stack, or far above it: nothing is read.
        let empty = BTreeMap::new();
        assert!(addresses(&empty, 0x1f_fff8).is_empty());
        assert!(addresses(&empty, 0x20_0000 + MAX_STACK_SPAN).is_empty());
        assert!(addresses(&empty, 0).is_empty());
    }

    #[test]
    fn a_long_chain_stops_at_the_frame_limit() {
        let frames: Vec<(u64, u64)> = (0..100).map(|i| (0x20_0000 + i * 16, 0x10_0100)).collect();
        let memory = stack(&frames);
        assert_eq!(addresses(&memory, 0x20_0000).len(), MAX_FRAMES);
    }
}
