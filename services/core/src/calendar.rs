//! R17.1: working days, from the official holiday schedule.
//!
//! Holidays and adjusted working weekends (调休) are data: one TOML file per year in
//! `pipeline-config/calendar/`, parsed here (no I/O: the caller reads the files). A date in a
//! year no file covers falls back to Monday–Friday, and says so.

use chrono::{Datelike, NaiveDate, Weekday};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};

/// The calendar shipped with this build (the current year's official schedule).
pub const SHIPPED: &[&str] = &[include_str!("../../../pipeline-config/calendar/cn-2026.toml")];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct YearFile {
    year: i32,
    source: String,
    holidays: Vec<NaiveDate>,
    working_weekends: Vec<NaiveDate>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Year {
    source: String,
    holidays: BTreeSet<NaiveDate>,
    working_weekends: BTreeSet<NaiveDate>,
}

/// Working days of the years it has files for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkCalendar {
    years: BTreeMap<i32, Year>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    #[error("calendar file: {0}")]
    Parse(String),
    #[error("calendar {year}: {date} is outside the year")]
    WrongYear { year: i32, date: NaiveDate },
    #[error("calendar {year}: {date} is both a holiday and a working day")]
    Both { year: i32, date: NaiveDate },
    #[error("calendar {year}: working weekend {date} is a {weekday}, not a Saturday or Sunday")]
    NotWeekend { year: i32, date: NaiveDate, weekday: Weekday },
    #[error("calendar: year {0} is defined twice")]
    Duplicate(i32),
}

/// Whether a day is a working day, and whether the calendar knew the year.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayKind {
    pub working: bool,
    /// False when no calendar file covers the year (Monday–Friday was assumed).
    pub covered: bool,
}

impl WorkCalendar {
    /// The calendar compiled into this build.
    pub fn shipped() -> Self {
        Self::from_files(SHIPPED.iter().copied()).expect("the shipped calendar is valid (tested)")
    }

    /// Parses and checks one TOML text per year.
    pub fn from_files<'a>(files: impl IntoIterator<Item = &'a str>) -> Result<Self, CalendarError> {
        let mut cal = Self::default();
        for text in files {
            let f: YearFile = toml::from_str(text).map_err(|e| CalendarError::Parse(e.to_string()))?;
            for &date in f.holidays.iter().chain(&f.working_weekends) {
                if date.year() != f.year {
                    return Err(CalendarError::WrongYear { year: f.year, date });
                }
            }
            for &date in &f.working_weekends {
                if !matches!(date.weekday(), Weekday::Sat | Weekday::Sun) {
                    return Err(CalendarError::NotWeekend { year: f.year, date, weekday: date.weekday() });
                }
                if f.holidays.contains(&date) {
                    return Err(CalendarError::Both { year: f.year, date });
                }
            }
            let year = Year {
                source: f.source,
                holidays: f.holidays.into_iter().collect(),
                working_weekends: f.working_weekends.into_iter().collect(),
            };
            if cal.years.insert(f.year, year).is_some() {
                return Err(CalendarError::Duplicate(f.year));
            }
        }
        Ok(cal)
    }

    pub fn years(&self) -> Vec<i32> {
        self.years.keys().copied().collect()
    }

    /// The last day the calendar covers (31 December of its last year), if it covers any.
    pub fn last_day(&self) -> Option<NaiveDate> {
        self.years.keys().next_back().and_then(|y| NaiveDate::from_ymd_opt(*y, 12, 31))
    }

    /// R17.1: whole days from `today` until the calendar runs out (negative once it has); past
    /// its end, deadlines fall back to plain weekdays and miss the official adjusted days.
    pub fn days_remaining(&self, today: NaiveDate) -> Option<i64> {
        self.last_day().map(|last| (last - today).num_days())
    }

    pub fn source(&self, year: i32) -> Option<&str> {
        self.years.get(&year).map(|y| y.source.as_str())
    }

    pub fn day(&self, date: NaiveDate) -> DayKind {
        let weekday = !matches!(date.weekday(), Weekday::Sat | Weekday::Sun);
        match self.years.get(&date.year()) {
            None => DayKind { working: weekday, covered: false },
            Some(y) if y.holidays.contains(&date) => DayKind { working: false, covered: true },
            Some(y) if y.working_weekends.contains(&date) => DayKind { working: true, covered: true },
            Some(_) => DayKind { working: weekday, covered: true },
        }
    }

    /// The `n`th working day after `date` (not counting `date` itself), and whether every day on
    /// the way was covered by a calendar file.
    pub fn nth_working_day_after(&self, date: NaiveDate, n: u32) -> (NaiveDate, bool) {
        let mut d = date;
        let mut found = 0;
        let mut covered = true;
        while found < n {
            d = d.succ_opt().expect("dates stay far from the end of the calendar");
            let k = self.day(d);
            covered &= k.covered;
            if k.working {
                found += 1;
            }
        }
        (d, covered)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn r17_1_the_shipped_calendar_says_when_it_runs_out() {
        let cal = WorkCalendar::shipped();
        let last = cal.last_day().unwrap();
        assert_eq!(last, NaiveDate::from_ymd_opt(*cal.years().last().unwrap(), 12, 31).unwrap());
        assert_eq!(cal.days_remaining(last), Some(0));
        assert_eq!(cal.days_remaining(last - chrono::TimeDelta::days(59)), Some(59));
        assert_eq!(cal.days_remaining(last + chrono::TimeDelta::days(1)), Some(-1));
        assert_eq!(WorkCalendar::default().days_remaining(last), None);
    }

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn the_shipped_2026_schedule_has_its_holidays_and_adjusted_weekends() {
        let cal = WorkCalendar::shipped();
        assert_eq!(cal.years(), vec![2026]);
        assert!(cal.source(2026).unwrap().contains("2026"));
        for (date, working) in [
            ("2026-01-01", false), // 元旦
            ("2026-01-04", true),  // Sunday, adjusted working day
            ("2026-02-13", true),  // Friday before the Spring Festival
            ("2026-02-14", true),  // Saturday, adjusted
            ("2026-02-15", false), // Spring Festival, a Sunday
            ("2026-02-23", false), // Spring Festival, a Monday
            ("2026-02-24", true),
            ("2026-02-28", true), // Saturday, adjusted
            ("2026-03-01", false),
            ("2026-05-05", false),
            ("2026-05-09", true),
            ("2026-09-20", true),
            ("2026-10-07", false),
            ("2026-10-10", true),
            ("2026-10-11", false), // an ordinary Sunday
            ("2026-11-27", true),  // an ordinary Friday
        ] {
            let k = cal.day(d(date));
            assert_eq!(k.working, working, "{date}");
            assert!(k.covered);
        }
        assert_eq!(cal.years[&2026].holidays.len(), 33);
    }

    #[test]
    fn years_without_a_file_fall_back_to_weekdays_and_say_so() {
        let cal = WorkCalendar::shipped();
        assert_eq!(cal.day(d("2027-01-01")), DayKind { working: true, covered: false }); // a Friday
        assert_eq!(cal.day(d("2027-01-02")), DayKind { working: false, covered: false });
    }

    #[test]
    fn counting_working_days_skips_holidays_and_uses_adjusted_weekends() {
        let cal = WorkCalendar::shipped();
        for (from, n, expected) in [
            ("2026-11-26", 2, "2026-11-30"), // Thu -> Fri, Mon
            ("2026-11-27", 2, "2026-12-01"), // Fri -> Mon, Tue
            ("2026-02-12", 2, "2026-02-14"), // Thu -> Fri 13, Sat 14 (adjusted)
            ("2026-02-13", 2, "2026-02-24"), // Fri -> Sat 14 (adjusted), then the festival until Tue 24
            ("2026-09-30", 2, "2026-10-09"), // National Day: Thu 8, Fri 9
            ("2026-10-08", 2, "2026-10-10"), // Fri 9, Sat 10 (adjusted)
        ] {
            assert_eq!(cal.nth_working_day_after(d(from), n), (d(expected), true), "{from} + {n}");
        }
        assert_eq!(cal.nth_working_day_after(d("2026-12-31"), 2), (d("2027-01-04"), false));
    }

    #[test]
    fn bad_calendars_are_refused() {
        let base =
            |h: &str, w: &str| format!("year = 2026\nsource = \"x\"\nholidays = [{h}]\nworking_weekends = [{w}]\n");
        assert!(matches!(
            WorkCalendar::from_files([base("\"2025-12-31\"", "").as_str()]),
            Err(CalendarError::WrongYear { .. })
        ));
        assert!(matches!(
            WorkCalendar::from_files([base("", "\"2026-11-27\"").as_str()]),
            Err(CalendarError::NotWeekend { .. })
        ));
        assert!(matches!(
            WorkCalendar::from_files([base("\"2026-11-28\"", "\"2026-11-28\"").as_str()]),
            Err(CalendarError::Both { .. })
        ));
        assert!(matches!(WorkCalendar::from_files(["year = 2026\n"]), Err(CalendarError::Parse(_))));
        let ok = base("", "");
        assert!(matches!(WorkCalendar::from_files([ok.as_str(), ok.as_str()]), Err(CalendarError::Duplicate(2026))));
    }
}
