//! R19.1: how long a recording is kept, decided from what the station says about the activity.
//!
//! Three classes, in increasing order of protection:
//! 1. [`RetentionClass::TwoYears`]: guidance, persuasion or correction with no dispute (R19.1(1)).
//! 2. [`RetentionClass::CaseFile`]: permit, penalty, coercion and levy activities, which join the case
//!    file within 30 days of closure (R19.1(2)). How long a case file is kept is decided by the
//!    archives rules, not by this system, so recvault never lets such a recording expire on its own:
//!    in object storage it carries the `permanent` tag until the case-archive flow says otherwise.
//! 3. [`RetentionClass::Permanent`]: disputes, objections, sudden or mass incidents (R19.1(3)).
//!
//! A class is only ever raised ([`RetentionClass::raise_to`]); nothing here can lower it.

use crate::job::ActivityV1;
use serde::{Deserialize, Serialize};
use std::fmt;

/// R19.1(1): two years, as the lifecycle rule's day count.
pub const TWO_YEARS_DAYS: u32 = 730;

/// The retention class of a recording, ordered from least to most protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RetentionClass {
    TwoYears,
    CaseFile,
    Permanent,
}

impl RetentionClass {
    pub const ALL: [RetentionClass; 3] = [Self::TwoYears, Self::CaseFile, Self::Permanent];

    /// Stable code stored in the database.
    pub fn code(self) -> &'static str {
        match self {
            Self::TwoYears => "two_years",
            Self::CaseFile => "case_file",
            Self::Permanent => "permanent",
        }
    }

    pub fn from_code(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.code() == s)
    }

    /// The `retention` object tag: only `2y` objects are ever expired by the lifecycle rule.
    pub fn tag(self) -> &'static str {
        match self {
            Self::TwoYears => "2y",
            Self::CaseFile | Self::Permanent => "permanent",
        }
    }

    /// How the archive's Object Lock protects an object of this class: a two-year recording is
    /// locked for exactly its retention period; anything longer gets a legal hold, which has no
    /// end date and is lifted only by an authorised person.
    pub fn lock(self) -> LockPlan {
        match self {
            Self::TwoYears => LockPlan { retain_days: TWO_YEARS_DAYS, legal_hold: false },
            Self::CaseFile | Self::Permanent => LockPlan { retain_days: TWO_YEARS_DAYS, legal_hold: true },
        }
    }

    /// R19.1: the class after a request to change it to `requested`. Never lower than `self`.
    pub fn raise_to(self, requested: RetentionClass) -> RetentionClass {
        self.max(requested)
    }

    /// R19.1: a person's request to change the class: a raise (or the same class, a no-op) is
    /// granted; a lower class is refused, never silently applied.
    pub fn request(self, requested: RetentionClass) -> Result<RetentionClass, Lowering> {
        if requested < self { Err(Lowering { current: self, requested }) } else { Ok(requested) }
    }
}

impl fmt::Display for RetentionClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// R19.1: a request to lower a retention class, refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the retention of a recording can only be raised (R19.1): it is {current}, {requested} would lower it")]
pub struct Lowering {
    pub current: RetentionClass,
    pub requested: RetentionClass,
}

/// Object Lock settings for a class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockPlan {
    /// Compliance-mode retention from the moment of archiving, in days.
    pub retain_days: u32,
    /// Whether a legal hold is placed as well.
    pub legal_hold: bool,
}

/// A retention class with the clause that decided it, kept beside the recording.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetentionDecision {
    pub class: RetentionClass,
    /// The R19.1 clause, e.g. `R19.1(3)3 dispute on scene`.
    pub basis: &'static str,
}

/// R19.1: the retention class of a recording of this activity.
pub fn decide(activity: &ActivityV1) -> RetentionDecision {
    let case_bound = activity.event_type.is_some_and(|t| t.category().is_case_bound());
    let (class, basis) = if activity.disputed {
        (RetentionClass::Permanent, "R19.1(3)3-4: dispute or objection on scene")
    } else if activity.emergency {
        (RetentionClass::Permanent, "R19.1(3)2: sudden or mass incident")
    } else if case_bound {
        (RetentionClass::CaseFile, "R19.1(2): permit, penalty, coercion or levy activity joins its case file")
    } else if activity.case_id.is_some() {
        (RetentionClass::CaseFile, "R19.1(2): recording belongs to a case")
    } else {
        (RetentionClass::TwoYears, "R19.1(1): guidance, persuasion or correction without dispute")
    };
    RetentionDecision { class, basis }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn r19_1_a_request_can_raise_or_keep_a_class_never_lower_it() {
        use RetentionClass::*;
        for current in RetentionClass::ALL {
            for requested in RetentionClass::ALL {
                let r = current.request(requested);
                if requested >= current {
                    assert_eq!(r, Ok(requested));
                } else {
                    assert_eq!(r, Err(Lowering { current, requested }));
                    assert!(r.unwrap_err().to_string().contains("only be raised"));
                }
            }
        }
        assert_eq!(Permanent.request(TwoYears).unwrap_err().requested, TwoYears);
    }
    use crate::taxonomy::{EventCategory, EventType};

    fn activity(event: Option<EventType>, case: bool, disputed: bool, emergency: bool) -> ActivityV1 {
        ActivityV1 {
            event_type: event,
            case_id: case.then(|| "C-1".to_string()),
            disputed,
            emergency,
            ..ActivityV1::default()
        }
    }

    #[test]
    fn r19_1_every_combination() {
        let events: Vec<Option<EventType>> =
            std::iter::once(None).chain(EventType::ALL.iter().copied().map(Some)).collect();
        for event in events {
            for case in [false, true] {
                for disputed in [false, true] {
                    for emergency in [false, true] {
                        let d = decide(&activity(event, case, disputed, emergency));
                        let expected = if disputed || emergency {
                            RetentionClass::Permanent
                        } else if case || event.is_some_and(|e| e.category().is_case_bound()) {
                            RetentionClass::CaseFile
                        } else {
                            RetentionClass::TwoYears
                        };
                        assert_eq!(
                            d.class, expected,
                            "{event:?} case={case} disputed={disputed} emergency={emergency}"
                        );
                        assert!(d.basis.starts_with("R19.1("), "{}", d.basis);
                    }
                }
            }
        }
    }

    #[test]
    fn r19_1_default_is_two_years() {
        let d = decide(&ActivityV1::default());
        assert_eq!(d.class, RetentionClass::TwoYears);
        assert_eq!(d.class.tag(), "2y");
        let routine = decide(&activity(Some(EventType::InspectionRoutine), false, false, false));
        assert_eq!(routine.class, RetentionClass::TwoYears);
        assert_eq!(EventType::InspectionRoutine.category(), EventCategory::Inspection);
    }

    #[test]
    fn r19_1_only_two_years_objects_carry_the_expiring_tag() {
        assert_eq!(RetentionClass::TwoYears.tag(), "2y");
        assert_eq!(RetentionClass::CaseFile.tag(), "permanent");
        assert_eq!(RetentionClass::Permanent.tag(), "permanent");
        assert!(!RetentionClass::TwoYears.lock().legal_hold);
        assert!(RetentionClass::CaseFile.lock().legal_hold);
        assert!(RetentionClass::Permanent.lock().legal_hold);
        assert_eq!(RetentionClass::TwoYears.lock().retain_days, 730);
    }

    #[test]
    fn r19_1_a_class_is_never_lowered() {
        for a in RetentionClass::ALL {
            for b in RetentionClass::ALL {
                let r = a.raise_to(b);
                assert!(r >= a && r >= b, "{a} -> {b} gave {r}");
                assert!(r == a || r == b);
            }
        }
        assert_eq!(RetentionClass::Permanent.raise_to(RetentionClass::TwoYears), RetentionClass::Permanent);
        assert_eq!(RetentionClass::TwoYears.raise_to(RetentionClass::CaseFile), RetentionClass::CaseFile);
    }

    #[test]
    fn codes_round_trip() {
        for c in RetentionClass::ALL {
            assert_eq!(RetentionClass::from_code(c.code()), Some(c));
        }
        assert_eq!(RetentionClass::from_code("2y"), None);
    }
}
