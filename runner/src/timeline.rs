//! The boot timeline: TSC stamps the guest prints when its command line has
//! `unikernel.timeline`, as lines `unikernel.timeline <stage> <tsc>` (the TSC in decimal, or
//! hexadecimal with `0x`). The runner takes those lines out of the serial output and shows
//! them as microseconds since the first stamp.
//!
//! Under both TCG and KVM the guest's TSC ticks at the host's TSC rate, so the runner
//! converts with the host's TSC frequency, which it measures itself.

use crate::size::grouped;
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

/// The table for a boot under `-icount shift=0`, where the guest's TSC counts one tick per
/// instruction: guest instructions since the first stamp and per step, the same on every
/// run.
pub(crate) fn render_instructions(stamps: &[Stamp]) -> String {
    let width = stamps
        .iter()
        .map(|stamp| stamp.stage.len())
        .max()
        .unwrap_or(0)
        .max("stage".len());
    let mut out = String::from("boot timeline (guest instructions, TCG -icount shift=0):\n");
    let _ = writeln!(
        out,
        "  {:<width$}  {:>12}  {:>12}",
        "stage", "since first", "step"
    );
    let first = stamps.first().map_or(0, |stamp| stamp.tsc);
    let mut previous = first;
    for stamp in stamps {
        let _ = writeln!(
            out,
            "  {:<width$}  {:>12}  {:>12}",
            stamp.stage,
            grouped(stamp.tsc.saturating_sub(first)),
            grouped(stamp.tsc.saturating_sub(previous))
        );
        previous = stamp.tsc;
    }
    out
}

/// What the guest's TSC ticks stand for in a chart.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Scale {
    /// Wall time: the TSC ticks at this many Hz.
    Time { tsc_hz: f64 },
    /// Guest instructions: one tick each (`-icount shift=0`).
    Instructions,
}

impl Scale {
    fn value(self, ticks: u64) -> f64 {
        match self {
            Scale::Time { tsc_hz } => ticks as f64 * 1e6 / tsc_hz,
            Scale::Instructions => ticks as f64,
        }
    }

    fn label(self, value: f64) -> String {
        match self {
            Scale::Time { .. } => format!("{value:.1} us"),
            Scale::Instructions => format!("{} instructions", grouped(value as u64)),
        }
    }
}

/// An SVG chart of the boot: one horizontal bar per stage (the step from the stamp before
/// to the stage's own), placed on one axis from the first stamp to the last, labelled with
/// the stage's name and length.
pub(crate) fn svg(stamps: &[Stamp], scale: Scale) -> String {
    const LABEL_WIDTH: f64 = 180.0;
    const CHART_WIDTH: f64 = 600.0;
    const VALUE_WIDTH: f64 = 160.0;
    const ROW: f64 = 24.0;
    const TOP: f64 = 32.0;
    let first = stamps.first().map_or(0, |stamp| stamp.tsc);
    let total = stamps
        .last()
        .map_or(0.0, |last| scale.value(last.tsc.saturating_sub(first)));
    let x = |ticks: u64| {
        if total > 0.0 {
            scale.value(ticks) / total * CHART_WIDTH
        } else {
            0.0
        }
    };
    let bars = stamps.len().saturating_sub(1);
    let width = LABEL_WIDTH + CHART_WIDTH + VALUE_WIDTH;
    let height = TOP + ROW * bars as f64 + 8.0;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        out,
        r#"  <text x="4" y="18" font-weight="bold">boot timeline: {} from {} to {}</text>"#,
        escape(&scale.label(total)),
        escape(stamps.first().map_or("", |s| &s.stage)),
        escape(stamps.last().map_or("", |s| &s.stage))
    );
    for (row, pair) in stamps.windows(2).enumerate() {
        let (before, stage) = (&pair[0], &pair[1]);
        let start = x(before.tsc.saturating_sub(first));
        let bar = (x(stage.tsc.saturating_sub(first)) - start).max(1.0);
        let y = TOP + ROW * row as f64;
        let step = scale.value(stage.tsc.saturating_sub(before.tsc));
        let _ = writeln!(
            out,
            r#"  <text x="4" y="{:.1}">{}</text>"#,
            y + 15.0,
            escape(&stage.stage)
        );
        let _ = writeln!(
            out,
            r##"  <rect class="stage" x="{:.1}" y="{y:.1}" width="{bar:.1}" height="{:.1}" fill="#4a7bd0"><title>{}: {}</title></rect>"##,
            LABEL_WIDTH + start,
            ROW - 6.0,
            escape(&stage.stage),
            escape(&scale.label(step))
        );
        let _ = writeln!(
            out,
            r#"  <text x="{:.1}" y="{:.1}">{}</text>"#,
            LABEL_WIDTH + CHART_WIDTH + 8.0,
            y + 15.0,
            escape(&scale.label(step))
        );
    }
    out.push_str("</svg>\n");
    out
}

/// Text for XML character data and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
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

    #[test]
    fn the_instruction_table_counts_from_the_first_stamp() {
        let stamps = [
            stamp("entry", 5_000),
            stamp("arch", 5_412),
            stamp("main", 7_103),
        ];
        let table = crate::timeline::render_instructions(&stamps);
        assert!(table.contains("TCG -icount shift=0"), "{table}");
        let main = table
            .lines()
            .find(|l| l.trim_start().starts_with("main"))
            .unwrap();
        assert_eq!(
            main.split_whitespace().collect::<Vec<_>>(),
            ["main", "2,103", "1,691"]
        );
    }

    #[test]
    fn the_chart_is_well_formed_xml_with_one_bar_per_stage() {
        use crate::timeline::{Scale, svg};
        let stamps = [
            stamp("entry", 1_000),
            stamp("arch<&>", 1_400),
            stamp("console", 1_500),
            stamp("main", 3_000),
        ];
        for scale in [Scale::Instructions, Scale::Time { tsc_hz: 1e9 }] {
            let chart = svg(&stamps, scale);
            let document = roxmltree::Document::parse(&chart).expect("well-formed XML");
            let root = document.root_element();
            assert_eq!(root.tag_name().name(), "svg");
            let bars: Vec<_> = root
                .descendants()
                .filter(|node| {
                    node.has_tag_name("rect") && node.attribute("class") == Some("stage")
                })
                .collect();
            assert_eq!(bars.len(), 3, "{chart}");
            let titles: Vec<&str> = bars
                .iter()
                .filter_map(|bar| bar.first_element_child()?.text())
                .collect();
            assert_eq!(
                titles[0],
                match scale {
                    Scale::Instructions => "arch<&>: 400 instructions",
                    Scale::Time { .. } => "arch<&>: 0.4 us",
                }
            );
            // The bars are laid end to end across the chart's 600 pixels.
            let x = |i: usize| bars[i].attribute("x").unwrap().parse::<f64>().unwrap();
            let w = |i: usize| bars[i].attribute("width").unwrap().parse::<f64>().unwrap();
            assert_eq!(x(0), 180.0);
            assert!((x(1) - (x(0) + w(0))).abs() < 0.2);
            assert!((x(2) + w(2) - 780.0).abs() < 0.2);
        }
        // A boot that printed nothing still gives a chart, with no bars.
        let empty = svg(&[], Scale::Instructions);
        assert!(roxmltree::Document::parse(&empty).is_ok());
    }
}
