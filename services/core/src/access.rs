//! Who may do what, for every user of the HTTP API (R18.1, R19.1, R20.1, R21.1, R22.1): roles, the
//! principal a verified token names, and one decision table, checked on every route.
//!
//! Data belongs to an enforcement unit (执法单位). A principal acts for one unit; only supervisors
//! (执法监督处 and peers, R22.1) see across units, and they only read. Operations staff see no
//! recording data at all. Later features (access requests and approvals, R20.1; the registry,
//! R21.1; supervision sampling, R22.1) add actions to this table, not new checks elsewhere.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A role, as carried in a token's `roles` claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// 案件系统: searches its unit's recordings, closes its cases, fetches their bundles.
    CaseSystem,
    /// 管理员 (R18.1, R21.1): manages its unit's records; raises retention.
    Administrator,
    /// 单位负责人 (R19.1, R20.1): approves; raises retention.
    UnitHead,
    /// 执法监督处 (R22.1): reads every unit's records, changes nothing.
    Supervisor,
    /// Operations: health and metrics, no recording data.
    Ops,
}

impl Role {
    pub const ALL: [Role; 5] = [Self::CaseSystem, Self::Administrator, Self::UnitHead, Self::Supervisor, Self::Ops];

    pub fn code(self) -> &'static str {
        match self {
            Self::CaseSystem => "case_system",
            Self::Administrator => "administrator",
            Self::UnitHead => "unit_head",
            Self::Supervisor => "supervisor",
            Self::Ops => "ops",
        }
    }

    pub fn from_code(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.code() == s)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// Who is asking: what a verified token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Principal {
    /// The token's `sub`: a case system's client id, a person's staff number.
    pub subject: String,
    pub roles: Vec<Role>,
    /// The unit the principal acts for.
    pub unit: String,
}

/// Something a principal can do through the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// R18.1: find recordings by party, date, location, event type.
    SearchRecordings,
    /// One recording's metadata, findings and timeline.
    ReadRecording,
    /// R19.1(2): close a case, which bundles its recordings into the case file.
    CloseCase,
    /// A bundle's state.
    ReadBundle,
    /// A short-lived link to a bundle's bytes (each one handed out is recorded, R21.1).
    DownloadBundle,
    /// R19.1: raise a recording's retention class, never lower it.
    RaiseRetention,
    /// Cases closed past their bundle deadline.
    ListOverdueCases,
}

impl Action {
    pub const ALL: [Action; 7] = [
        Self::SearchRecordings,
        Self::ReadRecording,
        Self::CloseCase,
        Self::ReadBundle,
        Self::DownloadBundle,
        Self::RaiseRetention,
        Self::ListOverdueCases,
    ];
}

/// Which units' data a role reaches for an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// Not at all.
    None,
    /// Its own unit's only.
    OwnUnit,
    /// Every unit's.
    AllUnits,
}

/// The decision table: what each role may do, and over which units.
pub fn reach(role: Role, action: Action) -> Reach {
    use Action::*;
    use Reach::*;
    match (role, action) {
        (Role::Ops, _) => None,
        (Role::Supervisor, SearchRecordings | ReadRecording | ReadBundle | ListOverdueCases) => AllUnits,
        (Role::Supervisor, _) => None,
        (Role::CaseSystem, SearchRecordings | ReadRecording | CloseCase | ReadBundle | DownloadBundle) => OwnUnit,
        (Role::CaseSystem, RaiseRetention | ListOverdueCases) => None,
        (Role::Administrator, SearchRecordings | ReadRecording | ReadBundle | DownloadBundle | RaiseRetention) => {
            OwnUnit
        }
        (Role::Administrator, ListOverdueCases) => OwnUnit,
        (Role::Administrator, CloseCase) => None,
        (Role::UnitHead, SearchRecordings | ReadRecording | ReadBundle | RaiseRetention | ListOverdueCases) => OwnUnit,
        (Role::UnitHead, CloseCase | DownloadBundle) => None,
    }
}

/// Why a principal may not do something.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    #[error("none of the roles {roles} may {action:?}")]
    Role { roles: String, action: Action },
    #[error("{action:?} on unit {unit} is not allowed for a principal of unit {own}")]
    OtherUnit { action: Action, unit: String, own: String },
}

impl Principal {
    /// The widest reach any of the principal's roles gives for `action`.
    pub fn reach(&self, action: Action) -> Reach {
        let mut best = Reach::None;
        for r in &self.roles {
            match reach(*r, action) {
                Reach::AllUnits => return Reach::AllUnits,
                Reach::OwnUnit => best = Reach::OwnUnit,
                Reach::None => {}
            }
        }
        best
    }

    /// May the principal do `action` at all (before the data's unit is known)?
    pub fn may(&self, action: Action) -> Result<Reach, Denied> {
        match self.reach(action) {
            Reach::None => {
                Err(Denied::Role { roles: self.roles.iter().map(|r| r.code()).collect::<Vec<_>>().join(","), action })
            }
            r => Ok(r),
        }
    }

    /// May the principal do `action` on data of `unit`?
    pub fn may_on(&self, action: Action, unit: &str) -> Result<(), Denied> {
        match self.may(action)? {
            Reach::AllUnits => Ok(()),
            Reach::OwnUnit if unit == self.unit => Ok(()),
            _ => Err(Denied::OtherUnit { action, unit: unit.to_string(), own: self.unit.clone() }),
        }
    }

    /// The unit a search is limited to (`None`: every unit), given the unit asked for.
    pub fn search_scope(&self, asked: Option<&str>) -> Result<Option<String>, Denied> {
        match self.may(Action::SearchRecordings)? {
            Reach::AllUnits => Ok(asked.map(str::to_string)),
            _ => match asked {
                Some(u) if u != self.unit => Err(Denied::OtherUnit {
                    action: Action::SearchRecordings,
                    unit: u.to_string(),
                    own: self.unit.clone(),
                }),
                _ => Ok(Some(self.unit.clone())),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who(role: Role) -> Principal {
        Principal { subject: "s".into(), roles: vec![role], unit: "zhidui".into() }
    }

    #[test]
    fn role_codes_round_trip() {
        for r in Role::ALL {
            assert_eq!(Role::from_code(r.code()), Some(r));
        }
        assert_eq!(Role::from_code("root"), None);
    }

    /// The whole matrix, written out: every action × every role × own and other unit.
    #[test]
    fn every_action_for_every_role_on_its_own_and_another_unit() {
        use Action::*;
        // (action, [case_system, administrator, unit_head, supervisor, ops]) as (own, other)
        let y = (true, false);
        let all = (true, true);
        let no = (false, false);
        let table: [(Action, [(bool, bool); 5]); 7] = [
            (SearchRecordings, [y, y, y, all, no]),
            (ReadRecording, [y, y, y, all, no]),
            (CloseCase, [y, no, no, no, no]),
            (ReadBundle, [y, y, y, all, no]),
            (DownloadBundle, [y, y, no, no, no]),
            (RaiseRetention, [no, y, y, no, no]),
            (ListOverdueCases, [no, y, y, all, no]),
        ];
        for (action, row) in table {
            for (role, (own, other)) in Role::ALL.into_iter().zip(row) {
                let p = who(role);
                assert_eq!(p.may_on(action, "zhidui").is_ok(), own, "{role} {action:?} own unit");
                assert_eq!(p.may_on(action, "huanwei").is_ok(), other, "{role} {action:?} other unit");
            }
        }
        assert_eq!(table.len(), Action::ALL.len());
    }

    #[test]
    fn several_roles_give_the_widest_reach() {
        let p = Principal { subject: "s".into(), roles: vec![Role::Ops, Role::CaseSystem], unit: "zhidui".into() };
        assert!(p.may_on(Action::CloseCase, "zhidui").is_ok());
        let none = Principal { subject: "s".into(), roles: vec![], unit: "zhidui".into() };
        assert!(matches!(none.may(Action::SearchRecordings), Err(Denied::Role { .. })));
    }

    #[test]
    fn a_search_is_kept_to_the_principals_unit() {
        let p = who(Role::CaseSystem);
        assert_eq!(p.search_scope(None), Ok(Some("zhidui".into())));
        assert_eq!(p.search_scope(Some("zhidui")), Ok(Some("zhidui".into())));
        assert!(matches!(p.search_scope(Some("huanwei")), Err(Denied::OtherUnit { .. })));
        let s = who(Role::Supervisor);
        assert_eq!(s.search_scope(None), Ok(None));
        assert_eq!(s.search_scope(Some("huanwei")), Ok(Some("huanwei".into())));
        assert!(who(Role::Ops).search_scope(None).is_err());
    }
}
