//! Per-recording checks of the rules on time: R11.1 (the recorder's clock) and R17.1 (export
//! within 24 hours, or 2 working days with the unit head's approval unless there was a dispute or
//! an emergency on scene).

use crate::calendar::WorkCalendar;
use crate::finding::{Finding, FindingKind, Severity};
use chrono::{DateTime, FixedOffset, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// Thresholds; defaults in `pipeline-config/recvault.toml` (`[analysis]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimePolicy {
    /// R11.1: a recorder clock further than this from the station's is a finding.
    pub clock_offset_threshold: TimeDelta,
    /// R17.1: the standard export deadline after a recording ends.
    pub upload_deadline: TimeDelta,
    /// R17.1: working days allowed with the unit head's approval.
    pub extension_working_days: u32,
    /// The units' civil time (working days are calendar days in this zone).
    pub utc_offset: FixedOffset,
}

impl Default for TimePolicy {
    fn default() -> Self {
        Self {
            clock_offset_threshold: TimeDelta::seconds(30),
            upload_deadline: TimeDelta::hours(24),
            extension_working_days: 2,
            utc_offset: FixedOffset::east_opt(8 * 3600).expect("+08:00 is valid"),
        }
    }
}

/// When a recording had to reach the system, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deadline {
    pub due: DateTime<Utc>,
    pub basis: String,
    /// False when a working day was assumed Monday–Friday (no calendar file for the year).
    pub calendar_covered: bool,
}

/// R17.1: the export deadline of a recording that ended at `ended`.
///
/// With an approved extension the recording may arrive until the end (24:00 local time) of the
/// `extension_working_days`th working day after the day it ended, and never earlier than the
/// standard deadline; a dispute or emergency on scene keeps the standard deadline.
pub fn upload_deadline(
    ended: DateTime<Utc>,
    extension_approved: bool,
    dispute_or_emergency: bool,
    calendar: &WorkCalendar,
    p: &TimePolicy,
) -> Deadline {
    let standard = ended + p.upload_deadline;
    if !extension_approved {
        return Deadline { due: standard, basis: "R17.1: 24 hours".into(), calendar_covered: true };
    }
    if dispute_or_emergency {
        return Deadline {
            due: standard,
            basis: "R17.1: 24 hours (extension does not apply after a dispute or emergency on scene)".into(),
            calendar_covered: true,
        };
    }
    let local_day = ended.with_timezone(&p.utc_offset).date_naive();
    let (last_day, covered) = calendar.nth_working_day_after(local_day, p.extension_working_days);
    let end_of_last = last_day
        .succ_opt()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .and_then(|t| t.and_local_timezone(p.utc_offset).single())
        .map(|t| t.to_utc())
        .unwrap_or(standard);
    Deadline {
        due: end_of_last.max(standard),
        basis: format!(
            "R17.1: {} working days, approved by the unit head (until end of {last_day})",
            p.extension_working_days
        ),
        calendar_covered: covered,
    }
}

/// R17.1: a finding if the recording reached the system after its deadline.
pub fn late_upload(ended: DateTime<Utc>, exported: DateTime<Utc>, deadline: &Deadline) -> Option<Finding> {
    if exported <= deadline.due {
        return None;
    }
    let late = exported - deadline.due;
    Some(Finding {
        kind: FindingKind::LateUpload,
        severity: Severity::Warning,
        summary: format!(
            "exported {:.1} h after the recording ended, {:.1} h after the deadline ({})",
            (exported - ended).num_minutes() as f64 / 60.0,
            late.num_minutes() as f64 / 60.0,
            deadline.basis
        ),
        evidence: json!({
            "recording_ended": ended,
            "exported_at": exported,
            "deadline": deadline.due,
            "basis": deadline.basis,
            "late_by_s": late.num_seconds(),
            "calendar_covered": deadline.calendar_covered,
        }),
    })
}

/// R11.1: a finding if the recorder's clock was off by more than the threshold at docking.
/// `offset` is station minus device (positive: the recorder is behind).
pub fn clock_offset(offset: TimeDelta, p: &TimePolicy) -> Option<Finding> {
    if offset.abs() <= p.clock_offset_threshold {
        return None;
    }
    let direction = if offset > TimeDelta::zero() { "behind" } else { "ahead of" };
    Some(Finding {
        kind: FindingKind::ClockOffset,
        severity: Severity::Warning,
        summary: format!(
            "recorder clock {:.1} s {direction} the station's at docking (tolerance {} s); times are corrected",
            offset.abs().num_milliseconds() as f64 / 1000.0,
            p.clock_offset_threshold.num_seconds()
        ),
        evidence: json!({
            "offset_ms": offset.num_milliseconds(),
            "threshold_ms": p.clock_offset_threshold.num_milliseconds(),
        }),
    })
}

/// R11.1 and R17.1 for one recording: what its job and its place in time raise. `recorded_end`
/// is on the corrected timeline; the moment of export is the station's clock at docking (the
/// recording reached the system then; a worker backlog is not the officer's delay).
pub fn recording_findings(
    job: &crate::UploadJob,
    recorded_end: Option<DateTime<Utc>>,
    calendar: &WorkCalendar,
    p: &TimePolicy,
) -> Vec<Finding> {
    let mut out: Vec<Finding> = clock_offset(job.clock_offset(), p).into_iter().collect();
    if let Some(ended) = recorded_end {
        let a = job.activity();
        let d = upload_deadline(ended, a.upload_extension_approved, a.disputed || a.emergency, calendar, p);
        out.extend(late_upload(ended, job.wire().station_time.to_utc(), &d));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn local(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        FixedOffset::east_opt(8 * 3600).unwrap().with_ymd_and_hms(y, m, d, h, min, 0).unwrap().to_utc()
    }

    #[test]
    fn r11_1_clock_offsets_at_and_around_the_threshold() {
        let p = TimePolicy::default();
        for (ms, flagged) in
            [(0, false), (30_000, false), (-30_000, false), (30_001, true), (-30_001, true), (-3_600_000, true)]
        {
            let f = clock_offset(TimeDelta::milliseconds(ms), &p);
            assert_eq!(f.is_some(), flagged, "{ms} ms");
            if let Some(f) = f {
                assert_eq!(f.kind.requirement(), "R11.1");
                assert_eq!(f.evidence["offset_ms"], ms);
                assert!(f.summary.contains(if ms > 0 { "behind" } else { "ahead" }));
            }
        }
    }

    #[test]
    fn r17_1_twenty_four_hours_at_and_around_the_deadline() {
        let cal = WorkCalendar::shipped();
        let p = TimePolicy::default();
        let ended = local(2026, 11, 27, 10, 0);
        let d = upload_deadline(ended, false, false, &cal, &p);
        assert_eq!(d.due, ended + TimeDelta::hours(24));
        for (after_min, late) in [(0, false), (24 * 60, false), (24 * 60 + 1, true), (72 * 60, true)] {
            let exported = ended + TimeDelta::minutes(after_min);
            assert_eq!(late_upload(ended, exported, &d).is_some(), late, "{after_min} min");
        }
    }

    #[test]
    fn r17_1_the_extension_counts_working_days_with_adjusted_weekends() {
        let cal = WorkCalendar::shipped();
        let p = TimePolicy::default();
        for (ended, due, why) in [
            // Friday 10:00 -> Mon, Tue: until Wednesday 00:00
            (local(2026, 11, 27, 10, 0), local(2026, 12, 2, 0, 0), "ordinary week"),
            // Thursday 23:30 -> Fri, Mon: until Tuesday 00:00
            (local(2026, 11, 26, 23, 30), local(2026, 12, 1, 0, 0), "late evening"),
            // Friday before the Spring Festival -> Sat 14 (adjusted), then Tue 24 after the holiday
            (local(2026, 2, 13, 9, 0), local(2026, 2, 25, 0, 0), "spring festival"),
            // Wednesday 30 Sep -> National Day off until Thu 8, Fri 9
            (local(2026, 9, 30, 16, 0), local(2026, 10, 10, 0, 0), "national day"),
            // Thu 8 Oct -> Fri 9, Sat 10 (adjusted)
            (local(2026, 10, 8, 8, 0), local(2026, 10, 11, 0, 0), "adjusted saturday"),
        ] {
            let d = upload_deadline(ended, true, false, &cal, &p);
            assert_eq!(d.due, due, "{why}: {}", d.basis);
            assert!(d.calendar_covered);
            assert!(late_upload(ended, due, &d).is_none(), "{why}: on time at the deadline");
            assert!(late_upload(ended, due + TimeDelta::seconds(1), &d).is_some(), "{why}: late after it");
        }
    }

    #[test]
    fn r17_1_a_dispute_or_emergency_keeps_twenty_four_hours() {
        let cal = WorkCalendar::shipped();
        let ended = local(2026, 11, 27, 10, 0);
        let d = upload_deadline(ended, true, true, &cal, &TimePolicy::default());
        assert_eq!(d.due, ended + TimeDelta::hours(24));
        assert!(d.basis.contains("dispute"));
        let f = late_upload(ended, ended + TimeDelta::hours(30), &d).unwrap();
        assert_eq!(f.kind.requirement(), "R17.1");
        assert_eq!(f.evidence["late_by_s"], 6 * 3600);
    }

    #[test]
    fn r17_1_a_year_without_a_calendar_is_flagged_in_the_evidence() {
        let d =
            upload_deadline(local(2027, 3, 3, 10, 0), true, false, &WorkCalendar::shipped(), &TimePolicy::default());
        assert!(!d.calendar_covered);
        assert_eq!(d.due, local(2027, 3, 6, 0, 0));
    }
}
