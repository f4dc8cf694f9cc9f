//! The boot timeline: TSC stamps the guest prints when its command line has
//! `unikernel.timeline`, as lines `unikernel.timeline <stage> <tsc>` (the TSC in decimal, or
//! hexadecimal with `0x`). The runner takes those lines out of the serial output and shows
//! them as microseconds since the first stamp.
//!
//! Under both TCG and KVM the guest's TSC ticks at the host's TSC rate, so the runner
//! converts with the host's TSC frequency, which it measures itself.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

/// What the runner appends to the kernel command line.
pub(crate) const CMDLINE_FLAG: &str = "unikernel.timeline";
/// How a timeline line starts (the flag and one space).
pub(crate) const LINE_PREFIX: &str = "unikernel.timeline ";

/// One stamp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamp {
    pub stage: String,
    pub tsc: u64,
}

/// Parses `unikernel.timeline <stage> <tsc>` (trailing `\r` and spaces allowed).
pub(crate) fn parse_line(line: &str) -> Option<Stamp> {
    let rest = line.trim_end().strip_prefix(LINE_PREFIX)?;
    let mut words = rest.split_whitespace();
    let stage = words.next()?;
    let tsc = words.next()?;
    if words.next().is_some() {
        return None;
    }
    let tsc = match tsc.strip_prefix("0x").or_else(|| tsc.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok()?,
        None => tsc.parse().ok()?,
    };
    Some(Stamp {
        stage: stage.to_string(),
        tsc,
    })
}

/// Reads the host's time-stamp counter (the one `unsafe` instruction lives in the monitor
/// crate, so that this crate has none).
fn rdtsc() -> Option<u64> {
    unikernel_vmm::host_tsc()
}

/// Measures the host's TSC frequency in Hz: RDTSC around a sleep of about `sleep`, divided
/// by the monotonic time that really passed. `None` where there is no TSC to read.
pub(crate) fn measure_tsc_hz_over(sleep: Duration) -> Option<f64> {
    let t0 = Instant::now();
    let c0 = rdtsc()?;
    std::thread::sleep(sleep);
    let c1 = rdtsc()?;
    let elapsed = t0.elapsed().as_secs_f64();
    (c1 > c0 && elapsed > 0.0).then(|| (c1 - c0) as f64 / elapsed)
}

/// Measures the host's TSC frequency over about 20 ms.
pub(crate) fn measure_tsc_hz() -> Option<f64> {
    measure_tsc_hz_over(Duration::from_millis(20))
}

/// One row of the table.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Row {
    pub stage: String,
    /// Microseconds since the first stamp.
    pub since_first_us: f64,
    /// Microseconds since the stamp before.
    pub delta_us: f64,
}

/// Converts stamps to microseconds since the first one, with TSC ticks at `tsc_hz`.
pub(crate) fn rows(stamps: &[Stamp], tsc_hz: f64) -> Vec<Row> {
    let Some(first) = stamps.first() else {
        return Vec::new();
    };
    let to_us = |ticks: i128| ticks as f64 * 1e6 / tsc_hz;
    let mut previous = first.tsc;
    stamps
        .iter()
        .map(|stamp| {
            let row = Row {
                stage: stamp.stage.clone(),
                since_first_us: to_us(stamp.tsc as i128 - first.tsc as i128),
                delta_us: to_us(stamp.tsc as i128 - previous as i128),
            };
            previous = stamp.tsc;
            row
        })
        .collect()
}

/// Microseconds from the first stamp (the PVH entry) to the stage named `main` (or, failing
/// that, the first stage whose name contains "main").
pub(crate) fn entry_to_main_us(stamps: &[Stamp], tsc_hz: f64) -> Option<f64> {
    let rows = rows(stamps, tsc_hz);
    rows.iter()
        .find(|row| row.stage == "main")
        .or_else(|| rows.iter().find(|row| row.stage.contains("main")))
        .map(|row| row.since_first_us)
}

/// The table the runner prints.
pub(crate) fn render(stamps: &[Stamp], tsc_hz: f64) -> String {
    let rows = rows(stamps, tsc_hz);
    let width = rows
        .iter()
        .map(|row| row.stage.len())
        .max()
        .unwrap_or(0)
        .max("stage".len());
    let mut out = String::new();
    let _ = writeln!(out, "boot timeline (host TSC {:.3} GHz):", tsc_hz / 1e9);
    let _ = writeln!(
        out,
        "  {:<width$}  {:>12}  {:>12}",
        "stage", "since first", "step"
    );
    for row in &rows {
        let _ = writeln!(
            out,
            "  {:<width$}  {:>9.1} us  {:>9.1} us",
            row.stage, row.since_first_us, row.delta_us
        );
    }
    out
}

/// The stamps as guest instructions per stage, for boots under `-icount shift=0`, where the
/// guest's TSC counts one tick per instruction: `entry->arch 412, ->console 120, ...;
/// entry->main 1,103 instructions`. `None` with fewer than two stamps.
pub(crate) fn instructions_line(stamps: &[Stamp]) -> Option<String> {
    let (first, rest) = stamps.split_first()?;
    if rest.is_empty() {
        return None;
    }
    let mut previous = first.tsc;
    let steps: Vec<String> = rest
        .iter()
        .enumerate()
        .map(|(index, stamp)| {
            let step = grouped(stamp.tsc.saturating_sub(previous));
            previous = stamp.tsc;
            if index == 0 {
                format!("{}->{} {step}", first.stage, stamp.stage)
            } else {
                format!("->{} {step}", stamp.stage)
            }
        })
        .collect();
    let last = rest.last()?;
    Some(format!(
        "{}; {}->{} {} instructions",
        steps.join(", "),
        first.stage,
        last.stage,
        grouped(last.tsc.saturating_sub(first.tsc))
    ))
}

/// `1103` as `1,103`.
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::timeline::{Stamp, entry_to_main_us, parse_line, render, rows};

    fn stamp(stage: &str, tsc: u64) -> Stamp {
        Stamp {
            stage: stage.into(),
            tsc,
        }
    }

    #[test]
    fn parse() {
        assert_eq!(
            parse_line("unikernel.timeline pvh 12345"),
            Some(stamp("pvh", 12345))
        );
        assert_eq!(
            parse_line("unikernel.timeline main 0x10\r\n"),
            Some(stamp("main", 16))
        );
        assert_eq!(parse_line("unikernel.timeline main"), None);
        assert_eq!(parse_line("unikernel.timeline main 12 extra"), None);
        assert_eq!(parse_line("unikernel.timeline main x"), None);
        assert_eq!(parse_line("hello unikernel.timeline main 1"), None);
    }

    #[test]
    fn conversion() {
        // 2 GHz: 2000 ticks per microsecond.
        let stamps = [
            stamp("pvh", 1_000_000),
            stamp("heap", 1_004_000),
            stamp("main", 1_010_000),
        ];
        let rows = rows(&stamps, 2e9);
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].since_first_us, 0.0);
        assert_eq!(rows[1].since_first_us, 2.0);
        assert_eq!(rows[2].since_first_us, 5.0);
        assert_eq!(rows[2].delta_us, 3.0);
        assert_eq!(entry_to_main_us(&stamps, 2e9), Some(5.0));
        assert_eq!(entry_to_main_us(&stamps[..2], 2e9), None);
        let table = render(&stamps, 2e9);
        assert!(table.contains("main"), "{table}");
        assert!(table.contains("5.0 us"), "{table}");
    }

    #[test]
    fn host_tsc_is_measured() {
        let hz = crate::timeline::measure_tsc_hz().expect("x86_64 has a TSC");
        assert!((1e8..1e11).contains(&hz), "{hz}");
    }

    #[test]
    fn instructions_per_stage_with_grouped_digits() {
        use crate::timeline::{grouped, instructions_line};
        let stamp = |stage: &str, tsc: u64| Stamp {
            stage: stage.into(),
            tsc,
        };
        let stamps = [
            stamp("entry", 5_000),
            stamp("arch", 5_412),
            stamp("console", 5_532),
            stamp("main", 6_103),
        ];
        assert_eq!(
            instructions_line(&stamps).unwrap(),
            "entry->arch 412, ->console 120, ->main 571; entry->main 1,103 instructions"
        );
        assert_eq!(instructions_line(&stamps[..1]), None);
        assert_eq!(grouped(1_234_567), "1,234,567");
        assert_eq!(grouped(999), "999");
    }
}
