//! The boot timeline: TSC stamps at the loader's entry, after each subsystem's init and at
//! `main`, so boot time can be read from inside the guest and printed by the runner.

/// One stamp: a boot stage and the TSC when it was reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mark {
    pub stage: &'static str,
    pub tsc: u64,
}

const CAPACITY: usize = 32;

struct Timeline {
    // `Option` keeps the table all zeros, so it lives in .bss and costs no image bytes.
    marks: [Option<Mark>; CAPACITY],
    len: usize,
}

static TIMELINE: spin::Mutex<Timeline> = spin::Mutex::new(Timeline {
    marks: [None; CAPACITY],
    len: 0,
});

/// The TSC at the first instruction of the kernel, stored by the boot entry.
pub(crate) static mut ENTRY_TSC: u64 = 0;

/// Reads the time-stamp counter.
pub fn tsc() -> u64 {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: rdtsc only reads a counter.
    unsafe {
        core::arch::x86_64::_rdtsc()
    }
    #[cfg(not(target_arch = "x86_64"))]
    0
}

/// Records that boot reached `stage` now. Stages past the capacity are dropped.
pub fn mark(stage: &'static str) {
    let tsc = tsc();
    let mut timeline = TIMELINE.lock();
    if timeline.len < CAPACITY {
        let len = timeline.len;
        timeline.marks[len] = Some(Mark { stage, tsc });
        timeline.len += 1;
    }
}

/// Every stamp so far, the loader's entry first.
pub fn marks() -> impl Iterator<Item = Mark> {
    // SAFETY: written once by the boot entry before any Rust code runs; read-only after.
    let entry = unsafe { core::ptr::read_volatile(&raw const ENTRY_TSC) };
    let timeline = TIMELINE.lock();
    let (marks, len) = (timeline.marks, timeline.len);
    core::iter::once(Mark {
        stage: "entry",
        tsc: entry,
    })
    .chain(marks.into_iter().take(len).flatten())
}

/// Calls `each` with every stamp so far, the loader's entry first, as [`marks`] yields
/// them but without copying the table out first (the exit's timeline print is 150 bytes
/// smaller this way). The table stays locked meanwhile: `each` must not call [`mark`].
pub fn for_each_mark(mut each: impl FnMut(Mark)) {
    // SAFETY: written once by the boot entry before any Rust code runs; read-only after.
    let entry = unsafe { core::ptr::read_volatile(&raw const ENTRY_TSC) };
    each(Mark {
        stage: "entry",
        tsc: entry,
    });
    let timeline = TIMELINE.lock();
    for mark in timeline.marks.iter().take(timeline.len).flatten() {
        each(*mark);
    }
}

/// The TSC's frequency, once a clock has measured it (0: not yet).
static MEASURED_TSC_HZ: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

/// Records the TSC's frequency a clock measured, for [`uptime_us`].
pub fn set_tsc_hz(hz: u64) {
    MEASURED_TSC_HZ.store(hz, core::sync::atomic::Ordering::Relaxed);
}

/// Microseconds since the kernel's first instruction: from the frequency a clock measured,
/// else the one the monitor or CPUID reports; `None` while no frequency is known (no clock
/// started yet, on a VMM that does not tell).
pub fn uptime_us() -> Option<u64> {
    let hz = match MEASURED_TSC_HZ.load(core::sync::atomic::Ordering::Relaxed) {
        0 => crate::hypervisor::tsc_hz().or_else(tsc_hz)?,
        hz => hz,
    };
    // SAFETY: written once by the boot entry before any Rust code runs; read-only after.
    let entry = unsafe { core::ptr::read_volatile(&raw const ENTRY_TSC) };
    // Whole megahertz: a 64-bit division, exact for the usual frequencies.
    Some(tsc().saturating_sub(entry) / (hz / 1_000_000).max(1))
}

/// The TSC frequency in Hz, where CPUID reports it (leaf 0x15, else leaf 0x16).
pub fn tsc_hz() -> Option<u64> {
    #[cfg(target_arch = "x86_64")]
    {
        use core::arch::x86_64::__cpuid;
        let max_leaf = __cpuid(0).eax;
        if max_leaf >= 0x15 {
            let leaf = __cpuid(0x15);
            if leaf.eax != 0 && leaf.ebx != 0 && leaf.ecx != 0 {
                return Some(u64::from(leaf.ecx) * u64::from(leaf.ebx) / u64::from(leaf.eax));
            }
        }
        if max_leaf >= 0x16 {
            let mhz = __cpuid(0x16).eax & 0xffff;
            if mhz != 0 {
                return Some(u64::from(mhz) * 1_000_000);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::vec::Vec;

    #[test]
    fn the_visitor_sees_what_the_iterator_yields() {
        mark("console");
        mark("main");
        let mut visited = Vec::new();
        for_each_mark(|mark| visited.push(mark));
        assert_eq!(visited, marks().collect::<Vec<_>>());
        let stages: Vec<_> = visited.iter().map(|mark| mark.stage).collect();
        assert_eq!(stages, ["entry", "console", "main"]);
    }
}
