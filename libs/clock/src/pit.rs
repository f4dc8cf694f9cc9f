//! The 8254 PIT: the reference that measures the TSC where nothing reports its frequency,
//! and the event timer of a machine without a local APIC (one-shot mode 0 on IRQ 0).

/// The PIT's input clock: 3.579545 MHz / 3.
pub const HZ_NUM: u64 = 3_579_545;
pub const HZ_DEN: u64 = 3;

/// Whole PIT ticks in `ns` nanoseconds, rounded down.
pub fn ticks_in(ns: u64) -> u64 {
    (u128::from(ns) * u128::from(HZ_NUM) / (u128::from(HZ_DEN) * 1_000_000_000)) as u64
}

/// The TSC frequency from `tsc` ticks counted over `pit` PIT ticks.
pub fn tsc_hz(tsc: u64, pit: u64) -> u64 {
    (u128::from(tsc) * u128::from(HZ_NUM) / (u128::from(HZ_DEN) * u128::from(pit.max(1)))) as u64
}

#[cfg(target_os = "none")]
pub use target::*;

#[cfg(target_os = "none")]
mod target {
    use x86_64::instructions::port::Port;

    const CHANNEL0: u16 = 0x40;
    const COMMAND: u16 = 0x43;

    fn out(port: u16, value: u8) {
        // SAFETY: ports 0x40 and 0x43 are the PIT's channel 0 data and command registers;
        // writing them programs the counter and does not touch memory.
        unsafe { Port::new(port).write(value) }
    }

    fn inb(port: u16) -> u8 {
        // SAFETY: reading channel 0's data port returns its latched count and has no
        // effect on memory.
        unsafe { Port::new(port).read() }
    }

    /// Latches channel 0's count; returns it with the TSC just after the latch.
    #[inline(always)]
    fn latched() -> (u16, u64) {
        out(COMMAND, 0x00); // latch channel 0
        let at = unikernel_arch::timeline::tsc();
        let low = inb(CHANNEL0);
        let high = inb(CHANNEL0);
        (u16::from_le_bytes([low, high]), at)
    }

    /// What one calibration measured.
    #[derive(Clone, Copy, Debug)]
    pub struct Measured {
        pub tsc: u64,
        pub pit: u64,
        /// How far the extra counter (the LAPIC timer's current count) went down.
        pub extra: Option<u64>,
        /// TSC ticks the whole measurement took, waiting for the first edge included.
        pub took: u64,
    }

    /// Counts TSC ticks (and the extra counter's) over `pit_ticks` PIT ticks, starting and
    /// ending on a PIT tick edge. `None` if the PIT does not count (no PIT on this machine),
    /// judged after `give_up` TSC ticks.
    ///
    /// Channel 0 counts down from 65536 in mode 2; each sample latches the count and reads
    /// the TSC right after, in the same straight-line code (under a binary translator such
    /// as QEMU TCG the first run of new code costs tens of microseconds to translate, which
    /// must not fall inside a pair). The 16-bit count keeps the measurement right even if
    /// the VMM's host deschedules the vCPU for up to 55 ms. Channel 0 is stopped at the end.
    /// `pit_ticks` is at most 65000 (54 ms).
    pub fn measure(pit_ticks: u64, give_up: u64, extra: Option<fn() -> u32>) -> Option<Measured> {
        let pit_ticks = pit_ticks.min(65_000);
        let tsc = unikernel_arch::timeline::tsc;
        let sample = || {
            let (count, at) = latched();
            (count, at, extra.map_or(0, |read| read()))
        };
        let start = tsc();
        out(COMMAND, 0x34); // channel 0 (00), low then high byte (11), mode 2 (010), binary
        out(CHANNEL0, 0);
        out(CHANNEL0, 0); // 0: 65536
        let (mut previous, _, _) = sample();
        let mut first: Option<(u16, u64, u32)> = None;
        loop {
            let (count, at, extra_now) = sample();
            if count != previous {
                let Some((count0, at0, extra0)) = first else {
                    first = Some((count, at, extra_now));
                    previous = count;
                    continue;
                };
                previous = count;
                let counted = u64::from(count0.wrapping_sub(count));
                if counted >= pit_ticks {
                    stop();
                    return Some(Measured {
                        tsc: at - at0,
                        pit: counted,
                        extra: extra.map(|_| u64::from(extra0.wrapping_sub(extra_now))),
                        took: at - start,
                    });
                }
            } else if first.is_none() && at - start > give_up {
                stop();
                return None;
            }
        }
    }

    /// Stops channel 0: mode 0 counts once to zero and then sits idle, so the VMM keeps no
    /// periodic timer running for it (the PIT starts out periodic).
    pub fn stop() {
        arm(1);
    }

    /// Raises IRQ 0 once, `ticks` PIT ticks from now (1 to 65535).
    pub fn arm(ticks: u16) {
        out(COMMAND, 0x30); // channel 0 (00), low then high byte (11), mode 0 (000), binary (0)
        out(CHANNEL0, ticks as u8);
        out(CHANNEL0, (ticks >> 8) as u8);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pit_arithmetic() {
        assert_eq!(ticks_in(1_000_000), 1193);
        assert_eq!(ticks_in(1_000_000_000), 1_193_181);
        // 1193 PIT ticks over which a 2.6 GHz TSC counted 2.6e9 * 1193 / 1193181.67 ticks.
        let hz = tsc_hz(2_599_503, 1193);
        assert!(hz.abs_diff(2_600_000_000) < 1_000_000, "{hz}");
    }
}
