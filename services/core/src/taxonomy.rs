//! R7.1: the enforcement activities that must be recorded, with stable machine codes.
//!
//! Codes are part of the job contract and of the database: they never change meaning. The Chinese
//! label is the regulation's own wording and is what people see.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The group an event type belongs to; R19.1 decides retention by group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventCategory {
    /// 行政许可 (R7.1 (1)).
    Permit,
    /// 行政处罚 (R7.1 (2)).
    Penalty,
    /// 行政强制 (R7.1 (3)).
    Coercion,
    /// 行政检查 (R7.1 (4)).
    Inspection,
    /// 行政征收 (R7.1 (5)).
    Levy,
    /// 送达 (R7.1 (6)).
    Service,
    /// 其它可能引发争议的直接接触 (R7.1 (7)).
    Other,
}

impl EventCategory {
    /// R19.1(2): permit, penalty, coercion and levy activities belong to a case file.
    pub fn is_case_bound(self) -> bool {
        matches!(self, Self::Permit | Self::Penalty | Self::Coercion | Self::Levy)
    }
}

macro_rules! event_types {
    ($($variant:ident = $code:literal, $category:ident, $label:literal;)*) => {
        /// R7.1: an activity that must be recorded.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
        pub enum EventType {
            $(
                #[doc = $label]
                #[serde(rename = $code)]
                $variant,
            )*
        }

        impl EventType {
            /// Every event type, in the regulation's order.
            pub const ALL: &'static [EventType] = &[$(EventType::$variant),*];

            /// The stable machine code (`penalty_inquiry`).
            pub fn code(self) -> &'static str {
                match self { $(Self::$variant => $code,)* }
            }

            /// The regulation's wording (`调查询问`).
            pub fn label_zh(self) -> &'static str {
                match self { $(Self::$variant => $label,)* }
            }

            pub fn category(self) -> EventCategory {
                match self { $(Self::$variant => EventCategory::$category,)* }
            }

            /// Parses a machine code; `None` for anything else.
            pub fn from_code(code: &str) -> Option<Self> {
                match code { $($code => Some(Self::$variant),)* _ => None }
            }
        }
    };
}

event_types! {
    PermitSiteSurvey = "permit_site_survey", Permit, "行政许可现场勘验";
    PenaltyInspection = "penalty_inspection", Penalty, "检查勘验";
    PenaltyInquiry = "penalty_inquiry", Penalty, "调查询问";
    PenaltyStatementDefence = "penalty_statement_defence", Penalty, "陈述申辩";
    PenaltyCollectiveDiscussion = "penalty_collective_discussion", Penalty, "集体讨论";
    PenaltyRectificationReview = "penalty_rectification_review", Penalty, "责令改正（整改）情况复查";
    PenaltySummaryProcedure = "penalty_summary_procedure", Penalty, "简易程序处罚";
    PenaltyPartyUncooperative = "penalty_party_uncooperative", Penalty, "当事人不配合调查";
    CoercionSealing = "coercion_sealing", Coercion, "查封";
    CoercionSeizure = "coercion_seizure", Coercion, "扣押";
    CoercionRegistrationPreservation = "coercion_registration_preservation", Coercion, "先行登记保存";
    CoercionEnforcement = "coercion_enforcement", Coercion, "强制执行";
    InspectionRoutine = "inspection_routine", Inspection, "日常例行检查";
    InspectionRandom = "inspection_random", Inspection, "双随机抽查";
    LevyDispute = "levy_dispute", Levy, "垃圾处理费征收异议的陈述、申辩及决定";
    ServiceDirect = "service_direct", Service, "直接送达";
    ServiceLeft = "service_left", Service, "留置送达";
    ServiceMail = "service_mail", Service, "邮寄送达";
    ServicePublicNotice = "service_public_notice", Service, "公告送达";
    OtherContact = "other_contact", Other, "其它可能引发争议和冲突的直接接触";
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn codes_round_trip_and_are_unique() {
        let mut seen = HashSet::new();
        for &t in EventType::ALL {
            assert!(seen.insert(t.code()), "duplicate code {}", t.code());
            assert_eq!(EventType::from_code(t.code()), Some(t));
            let json = serde_json::to_string(&t).unwrap();
            assert_eq!(json, format!("\"{}\"", t.code()));
            assert_eq!(serde_json::from_str::<EventType>(&json).unwrap(), t);
        }
        assert_eq!(EventType::from_code("penalty"), None);
    }

    #[test]
    fn r7_1_lists_twenty_activities_in_seven_groups() {
        assert_eq!(EventType::ALL.len(), 20);
        let groups: HashSet<_> = EventType::ALL.iter().map(|t| t.category()).collect();
        assert_eq!(groups.len(), 7);
    }

    #[test]
    fn r19_1_case_bound_groups() {
        use EventCategory::*;
        for (c, bound) in [
            (Permit, true),
            (Penalty, true),
            (Coercion, true),
            (Levy, true),
            (Inspection, false),
            (Service, false),
            (Other, false),
        ] {
            assert_eq!(c.is_case_bound(), bound, "{c:?}");
        }
    }
}
