//! Authorisation by section: how a signed-in user stands to a project and its
//! sections. Role gates say *what kind* of user may act; these relations say
//! *which* sections they may act on. Both are checked on every use case.
//!
//! | relation    | who                                                         |
//! |-------------|-------------------------------------------------------------|
//! | runs        | a host whose organisation is the project's centre or agent   |
//! | owns        | a tenderer user of the project's tenderer organisation       |
//! | supervises  | a supervisor of the project's regulator                      |
//! | custodian   | a custodian named for the section                            |

use crate::db::sections::ProjectRow;
use crate::db::{sections as repo, DbConn};
use crate::domain::identity::Role;
use crate::domain::ids::{OrgId, SectionId};
use crate::error::{AppError, AppResult};

use super::AuthUser;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Standing {
    pub runs: bool,
    pub owns: bool,
    pub supervises: bool,
    pub custodian: bool,
}

impl Standing {
    /// May see the section's non-public state (drafts, schedule, audit).
    pub fn can_view(&self) -> bool {
        self.runs || self.owns || self.supervises || self.custodian
    }
}

fn same_org(user: &AuthUser, org: Option<&OrgId>) -> bool {
    match (&user.org_id, org) {
        (Some(mine), Some(theirs)) => mine == theirs,
        _ => false,
    }
}

/// The caller's standing on a project (and optionally one of its sections).
pub fn standing(
    c: &mut DbConn,
    user: &AuthUser,
    project: &ProjectRow,
    section_id: Option<&SectionId>,
) -> AppResult<Standing> {
    let runs = user.role == Role::Host
        && (same_org(user, Some(&project.centre_org_id))
            || same_org(user, project.agent_org_id.as_ref()));
    let owns = user.role == Role::Tenderer && same_org(user, Some(&project.tenderer_org_id));
    let supervises =
        user.role == Role::Supervisor && same_org(user, Some(&project.regulator_org_id));
    let custodian = match section_id {
        Some(s) if user.role == Role::Custodian => repo::is_custodian(c, s, &user.id)?,
        _ => false,
    };
    Ok(Standing {
        runs,
        owns,
        supervises,
        custodian,
    })
}

/// Not found for those who may not even know the section exists (drafts are
/// private); forbidden for those who may see it but not do this.
pub fn deny(visible: bool, action: &str) -> AppError {
    if visible {
        AppError::forbidden(format!("you may not {action} on this section"))
    } else {
        AppError::not_found("section")
    }
}

pub fn require_runs(s: &Standing, public: bool, action: &str) -> AppResult<()> {
    if s.runs {
        Ok(())
    } else {
        Err(deny(public || s.can_view(), action))
    }
}
