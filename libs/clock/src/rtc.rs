//! The CMOS real-time clock: the wall-clock time at one-second resolution, read once.

/// The date and time fields as the RTC holds them (already decoded from BCD and 12-hour
/// form where the RTC uses those).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DateTime {
    pub year: u32,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
}

impl DateTime {
    /// Seconds since 1970-01-01 00:00:00 UTC (the RTC of a VM holds UTC).
    pub fn unix_seconds(&self) -> u64 {
        let days = days_from_civil(self.year as i64, self.month, self.day);
        (days * 86_400) as u64
            + u64::from(self.hour) * 3600
            + u64::from(self.minute) * 60
            + u64::from(self.second)
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month = i64::from(month);
    let day_of_year =
        (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

pub fn from_bcd(value: u8) -> u8 {
    (value >> 4) * 10 + (value & 0x0f)
}

/// The raw registers: seconds, minutes, hours, day, month, year (two digits), century
/// (0 if the RTC has none), and status register B.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Registers {
    pub second: u8,
    pub minute: u8,
    pub hour: u8,
    pub day: u8,
    pub month: u8,
    pub year: u8,
    pub century: u8,
    pub status_b: u8,
}

const BINARY: u8 = 1 << 2;
const HOURS_24: u8 = 1 << 1;
const PM: u8 = 0x80;

impl Registers {
    pub fn decode(&self) -> DateTime {
        let binary = self.status_b & BINARY != 0;
        let value = |raw: u8| u32::from(if binary { raw } else { from_bcd(raw) });
        let mut hour = value(self.hour & !PM);
        if self.status_b & HOURS_24 == 0 {
            hour %= 12;
            if self.hour & PM != 0 {
                hour += 12;
            }
        }
        let century = if self.century != 0 {
            value(self.century)
        } else {
            20
        };
        DateTime {
            year: century * 100 + value(self.year),
            month: value(self.month),
            day: value(self.day),
            hour,
            minute: value(self.minute),
            second: value(self.second),
        }
    }
}

/// Reads the RTC; `None` if there is none (its registers read as all ones) or it never
/// leaves an update (a broken one).
#[cfg(target_os = "none")]
pub fn read() -> Option<DateTime> {
    use x86_64::instructions::port::Port;
    fn register(index: u8) -> u8 {
        // SAFETY: ports 0x70/0x71 are the CMOS index and data registers; bit 7 of the
        // index keeps NMIs disabled while it is selected, as the RTC expects. Reading
        // the clock registers has no side effects.
        unsafe {
            Port::<u8>::new(0x70).write(0x80 | index);
            Port::<u8>::new(0x71).read()
        }
    }
    fn snapshot() -> Option<Registers> {
        // Wait out an update in progress (status A bit 7): about 2 ms once a second. An
        // absent RTC reads 0xff, as if always updating.
        let mut tries = 0u32;
        while register(0x0a) & 0x80 != 0 {
            tries += 1;
            if tries > 100_000 {
                return None;
            }
            core::hint::spin_loop();
        }
        Some(Registers {
            second: register(0x00),
            minute: register(0x02),
            hour: register(0x04),
            day: register(0x07),
            month: register(0x08),
            year: register(0x09),
            century: register(0x32),
            status_b: register(0x0b),
        })
    }
    // Two equal snapshots in a row: no update happened in between.
    let mut last = snapshot()?;
    for _ in 0..10 {
        let next = snapshot()?;
        if next == last {
            return Some(next.decode());
        }
        last = next;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        let date = DateTime {
            year: 2024,
            month: 2,
            day: 29,
            hour: 12,
            minute: 34,
            second: 56,
        };
        // date -u -d '2024-02-29 12:34:56' +%s
        assert_eq!(date.unix_seconds(), 1_709_210_096);
    }

    #[test]
    fn decodes_bcd_and_12_hour_registers() {
        let regs = Registers {
            second: 0x56,
            minute: 0x34,
            hour: 0x80 | 0x12, // 12 PM
            day: 0x29,
            month: 0x02,
            year: 0x24,
            century: 0x20,
            status_b: 0,
        };
        assert_eq!(regs.decode().hour, 12);
        assert_eq!(regs.decode().unix_seconds(), 1_709_210_096);
        let binary = Registers {
            second: 56,
            minute: 34,
            hour: 12,
            day: 29,
            month: 2,
            year: 24,
            century: 0,
            status_b: BINARY | HOURS_24,
        };
        assert_eq!(binary.decode(), regs.decode());
    }
}
