//! Out of memory, said in terms the app's author can act on.
//!
//! Stable Rust has no `alloc_error_handler`: an allocation failure the caller does not
//! handle panics inside the toolchain (`alloc::alloc::handle_alloc_error`: "memory
//! allocation of N bytes failed" at `/rustc/<hash>/library/alloc/src/alloc.rs`). So the
//! heap notes what it saw each time it returns null ([`note_alloc_failure`]), and the panic
//! handler, when the panic comes from there, prints that note instead: the request, the
//! heap's size, what is in use, the largest free block and the declaration to change. A
//! failure the caller handles (`try_reserve`) leaves a note nobody prints.

use core::fmt;

/// What the heap saw when it could not satisfy an allocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AllocFailure {
    /// The bytes asked for.
    pub request: usize,
    /// Their alignment.
    pub align: usize,
    /// The heap's size, as declared in `heap = "..."`.
    pub heap_size: usize,
    /// Bytes in use at the time.
    pub used: usize,
    /// The largest block that could have been handed out (at this alignment).
    pub largest_free: usize,
}

static LAST: spin::Mutex<Option<AllocFailure>> = spin::Mutex::new(None);

/// Records the heap's state at a failed allocation, for the report if it turns into a panic.
pub fn note_alloc_failure(failure: AllocFailure) {
    *LAST.lock() = Some(failure);
}

/// The failure noted for `location`'s panic, if the panic is the toolchain's allocation-error
/// panic (raised in `alloc/src/alloc.rs`).
pub fn failure_behind(location: Option<&core::panic::Location<'_>>) -> Option<AllocFailure> {
    let file = location?.file();
    if !file.ends_with("alloc/src/alloc.rs") {
        return None;
    }
    // `try_lock`: a panic while the heap held the lock must still be reported.
    LAST.try_lock().and_then(|mut last| last.take())
}

impl AllocFailure {
    /// A heap size that would have had room: the next power of two above what was in use
    /// plus the request, and never smaller than twice the declared size.
    pub fn suggested_heap(&self) -> usize {
        let needed = self
            .used
            .saturating_add(self.request)
            .saturating_add(self.align);
        needed
            .checked_next_power_of_two()
            .unwrap_or(usize::MAX)
            .max(self.heap_size.saturating_mul(2))
    }
}

impl fmt::Display for AllocFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "out of memory: the app asked for {} bytes, but the heap of {} has {} bytes in use \
             and its largest free block is {} bytes\n\
             hint: declare a larger heap in `#[unikernel(...)]`, e.g. `heap = \"{}\"` \
             (the VM needs that much memory more: the runner's `--memory`)",
            self.request,
            Size(self.heap_size),
            self.used,
            self.largest_free,
            Size(self.suggested_heap()),
        )
    }
}

/// A size as the attribute writes it: `64 KiB`, `2 MiB`, or bytes when not whole KiB.
struct Size(usize);

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [&str; 4] = ["bytes", "KiB", "MiB", "GiB"];
        // The largest unit that divides the size, up to GiB.
        let power = (self.0.max(1).trailing_zeros() / 10).min(3);
        let unit = UNITS.get(power as usize).copied().unwrap_or_default();
        write!(f, "{} {unit}", self.0 >> (10 * power))
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::string::ToString;

    fn failure() -> AllocFailure {
        AllocFailure {
            request: 1 << 20,
            align: 1,
            heap_size: 64 << 10,
            used: 40,
            largest_free: 65_432,
        }
    }

    #[test]
    fn the_report_names_the_request_the_heap_and_the_fix() {
        let text = failure().to_string();
        assert!(text.starts_with("out of memory: the app asked for 1048576 bytes"));
        assert!(text.contains("the heap of 64 KiB has 40 bytes in use"));
        assert!(text.contains("largest free block is 65432 bytes"));
        assert!(text.contains("`heap = \"2 MiB\"`"), "{text}");
    }

    #[test]
    fn the_suggestion_is_never_less_than_twice_the_heap() {
        let small = AllocFailure {
            request: 16,
            used: 1000,
            ..failure()
        };
        assert_eq!(small.suggested_heap(), 128 << 10);
        let huge = AllocFailure {
            request: usize::MAX - 8,
            ..failure()
        };
        assert_eq!(huge.suggested_heap(), usize::MAX);
    }

    #[test]
    fn sizes_print_in_the_largest_whole_unit() {
        assert_eq!(Size(64 << 10).to_string(), "64 KiB");
        assert_eq!(Size(3 << 30).to_string(), "3 GiB");
        assert_eq!(Size(1000).to_string(), "1000 bytes");
        assert_eq!(Size((1 << 20) + 4096).to_string(), "1028 KiB");
    }

    #[test]
    fn only_the_toolchains_allocation_panic_is_explained() {
        note_alloc_failure(failure());
        assert_eq!(failure_behind(Some(core::panic::Location::caller())), None);
        assert_eq!(failure_behind(None), None);
    }
}
