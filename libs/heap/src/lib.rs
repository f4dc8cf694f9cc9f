//! The `heap` subsystem: the global allocator over one range of the VM's memory, whose
//! size the app declares. A first-fit free list (`linked_list_allocator`) keeps the code
//! small; the lock is a spinlock because the kernel has one CPU and no preemption inside
//! the allocator.
#![no_std]
// The `GlobalAlloc` impls are `unsafe impl` by the trait's contract; nothing else is unsafe.
#![deny(unsafe_code)]

use core::alloc::{GlobalAlloc, Layout};
use core::mem::MaybeUninit;
use core::ptr::{self, NonNull};

/// The global allocator of an app that declares `heap = "<size>"`.
pub struct Heap {
    inner: spin::Mutex<Inner>,
}

struct Inner {
    free_list: linked_list_allocator::Heap,
    high_water: usize,
}

/// How much of the heap is in use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeapStats {
    /// The heap's size in bytes.
    pub size: usize,
    /// Bytes allocated now.
    pub used: usize,
    /// The most bytes ever allocated at once.
    pub high_water: usize,
}

impl core::fmt::Debug for Heap {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Heap")
            .field("stats", &self.stats())
            .finish()
    }
}

impl Default for Heap {
    fn default() -> Self {
        Self::new()
    }
}

impl Heap {
    /// An empty heap: every allocation fails until `init`.
    pub const fn new() -> Self {
        Self {
            inner: spin::Mutex::new(Inner {
                free_list: linked_list_allocator::Heap::empty(),
                high_water: 0,
            }),
        }
    }

    /// Hands the heap its memory. Called once, at boot.
    pub fn init(&self, memory: &'static mut [MaybeUninit<u8>]) {
        self.inner.lock().free_list.init_from_slice(memory);
    }

    pub fn stats(&self) -> HeapStats {
        let inner = self.inner.lock();
        HeapStats {
            size: inner.free_list.size(),
            used: inner.free_list.used(),
            high_water: inner.high_water,
        }
    }
}

impl Inner {
    /// The heap's state at a failed allocation of `layout`, for the out-of-memory report.
    fn failure(&mut self, layout: Layout) -> unikernel_arch::oom::AllocFailure {
        unikernel_arch::oom::AllocFailure {
            request: layout.size(),
            align: layout.align(),
            heap_size: self.free_list.size(),
            used: self.free_list.used(),
            largest_free: self.largest_free(layout.align()),
        }
    }

    /// The largest block at `align` the free list can hand out now. The allocator keeps no
    /// such figure, so this asks it: a binary search of trial allocations, each given back
    /// at once (about 30 tries, only on the failure path).
    fn largest_free(&mut self, align: usize) -> usize {
        let (mut fits, mut fails) = (0, self.free_list.free() + 1);
        while fails - fits > 1 {
            let size = fits + (fails - fits) / 2;
            let Ok(layout) = Layout::from_size_align(size, align) else {
                fails = size;
                continue;
            };
            match self.free_list.allocate_first_fit(layout) {
                Ok(block) => {
                    // SAFETY: `block` was just allocated from this free list with `layout`.
                    #[allow(unsafe_code)]
                    unsafe {
                        self.free_list.deallocate(block, layout)
                    };
                    fits = size;
                }
                Err(()) => fails = size,
            }
        }
        fits
    }
}

#[allow(unsafe_code)]
// SAFETY: allocation and deallocation are delegated to the free list under a lock; the free
// list returns blocks that fit `layout` and that it does not hand out again until freed.
unsafe impl GlobalAlloc for Heap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let mut inner = self.inner.lock();
        match inner.free_list.allocate_first_fit(layout) {
            Ok(block) => {
                inner.high_water = inner.high_water.max(inner.free_list.used());
                block.as_ptr()
            }
            Err(()) => {
                unikernel_arch::oom::note_alloc_failure(inner.failure(layout));
                ptr::null_mut()
            }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if let Some(block) = NonNull::new(ptr) {
            // SAFETY: the caller passes a block this allocator returned for `layout`.
            unsafe { self.inner.lock().free_list.deallocate(block, layout) }
        }
    }
}

/// The global allocator of an app that declares no heap: every allocation is a bug in the
/// app's declaration, reported as such.
#[derive(Debug)]
pub struct NoHeap;

#[allow(unsafe_code)]
// SAFETY: never hands out memory, so there is nothing to get wrong.
unsafe impl GlobalAlloc for NoHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        panic!(
            "the app allocated {} bytes but declares no heap: add `heap = \"1 MiB\"` (or the size it needs) to `#[unikernel(...)]`",
            layout.size()
        )
    }

    unsafe fn dealloc(&self, _ptr: *mut u8, _layout: Layout) {}
}

#[cfg(test)]
#[allow(unsafe_code)]
mod tests {
    use super::*;
    extern crate std;

    fn heap_of(size: usize) -> Heap {
        let memory =
            std::boxed::Box::leak(std::vec![MaybeUninit::new(0u8); size].into_boxed_slice());
        let heap = Heap::new();
        heap.init(memory);
        heap
    }

    #[test]
    fn allocates_frees_and_tracks_the_high_water_mark() {
        let heap = heap_of(64 * 1024);
        let layout = Layout::from_size_align(1000, 8).unwrap();
        // SAFETY: layout has a non-zero size; the blocks are freed with the same layout.
        unsafe {
            let a = heap.alloc(layout);
            let b = heap.alloc(layout);
            assert!(!a.is_null() && !b.is_null() && a != b);
            assert!(heap.stats().used >= 2000);
            heap.dealloc(a, layout);
            heap.dealloc(b, layout);
        }
        let stats = heap.stats();
        assert_eq!(stats.used, 0);
        assert!(stats.high_water >= 2000);
        assert_eq!(stats.size, 64 * 1024);
    }

    #[test]
    fn exhaustion_returns_null() {
        let heap = heap_of(4096);
        // SAFETY: as above.
        let block = unsafe { heap.alloc(Layout::from_size_align(8192, 8).unwrap()) };
        assert!(block.is_null());
    }

    #[test]
    fn a_failure_notes_the_request_and_the_largest_free_block() {
        let heap = heap_of(64 * 1024);
        let half = Layout::from_size_align(30 * 1024, 8).unwrap();
        // SAFETY: as above; `kept` stays allocated, so the free space is what is left.
        let kept = unsafe { heap.alloc(half) };
        assert!(!kept.is_null());
        let mut inner = heap.inner.lock();
        let failure = inner.failure(Layout::from_size_align(1 << 20, 8).unwrap());
        assert_eq!(failure.request, 1 << 20);
        assert_eq!(failure.heap_size, 64 * 1024);
        assert_eq!(failure.used, 30 * 1024);
        let free = 64 * 1024 - 30 * 1024;
        assert!(
            failure.largest_free <= free && failure.largest_free > free - 64,
            "{failure:?}"
        );
        // The probe gave back every trial block.
        assert_eq!(inner.free_list.used(), 30 * 1024);
    }

    #[test]
    fn honours_alignment() {
        let heap = heap_of(64 * 1024);
        let layout = Layout::from_size_align(64, 4096).unwrap();
        // SAFETY: as above.
        let block = unsafe { heap.alloc(layout) };
        assert_eq!(block as usize % 4096, 0);
    }
}
