//! The opening (开标, DESIGN §4 and §5): from the sealing through the
//! decryption window, the announcement (唱标), confirmations and objections
//! (异议), to the closed record signed by the platform and countersigned by
//! the supervisor.
//!
//! Every change here is one transaction (`service::action`) that checks the
//! section's phase and the caller's standing, makes the change, and records
//! it — the room event, the log leaf when it matters to the record, the
//! audit record — so the room, the log and the tables can never disagree.
//! Timed steps (the window's end, the custodian decryption) are chronograph
//! jobs, and so survive a crash.
//!
//! Nothing that would reveal a price exists in the clear before the
//! announcement: released keys and decrypted summaries are sealed at rest
//! (`crypto::atrest`) until the record is announced, then published.
//!
//! | file          | owns                                                        |
//! |---------------|-------------------------------------------------------------|
//! | `mod.rs`      | the section as the opening sees it; phase and window checks |
//! | `start.rs`    | what the sealing starts: sign-ins revealed, the window, 流标 |
//! | `signin.rs`   | sign-in (签到), blind before the deadline                    |
//! | `release.rs`  | custodians releasing their section keys                     |
//! | `decrypt.rs`  | decrypting bids: by a bidder's key, by the custodians' job  |
//! | `window.rs`   | the window's end and attribution, extension, incidents      |
//! | `announce.rs` | the announcement (唱标) of every result at once              |
//! | `confirm.rs`  | confirmations, objections and the host's answers            |
//! | `close.rs`    | the closed record: the platform's signature, the countersignature |
//! | `notice.rs`   | the host's notices to the room                              |
//! | `record.rs`   | reading the opening record and its signatures               |

mod announce;
mod close;
mod confirm;
mod decrypt;
mod notice;
mod record;
mod release;
mod signin;
mod start;
mod window;

pub use close::{close, countersign, RecordClosed, RecordCountersigned};
pub use confirm::{
    answer, confirm, object, ConfirmRequest, ObjectionAnswered, ObjectionRaised, RecordConfirmed,
    TextRequest,
};
pub use decrypt::{open_all, run_decrypt_job, submit_bmk, BidDecrypted, BmkRequest, Outcome};
pub use notice::{notice, NoticePosted};
pub(crate) use record::countersigning_key;
pub use record::{record_of, RecordView};
pub use release::{release_key, KeyReleased};
pub use signin::{open_signin, sign_in, SignedIn, SigninOpened};
pub use start::begin;
pub use window::{
    countersign_incident, declare_incident, end_window, extend, resume, ExtendRequest,
    IncidentDeclared, IncidentRequest, IncidentUpheld, SignatureRequest, WindowEnd, WindowMoved,
};

use crate::db::identity as identity_repo;
use crate::db::opening::OpeningRow;
use crate::db::sections::{self as sections_repo, ProjectRow, SectionRow};
use crate::db::DbConn;
use crate::domain::ids::{OrgId, SectionId};
use crate::domain::section::{DecryptionMode, SectionState};
use crate::domain::time::Timestamp;
use crate::error::{AppError, AppResult, ErrorCode};
use crate::service::sections::SectionParams;
use crate::service::{policy, Actor};

/// How long a node holds the decryption job without settling a bid before
/// another node may take it over (platform time). Each settled bid renews it.
const DECRYPT_LEASE_MS: i64 = 30_000;
/// The longest free text (reasons, objections, answers, notices).
const MAX_TEXT: usize = 2000;
/// The longest a host may stretch a window, in total.
const MAX_WINDOW_MS: i64 = 24 * 3600 * 1000;

/// A published section as the opening (and the evaluation after it) sees
/// it: its row, its project and its published parameters.
pub(crate) struct PublishedSection {
    pub s: SectionRow,
    pub p: ProjectRow,
    pub params: SectionParams,
}

impl PublishedSection {
    pub fn id(&self) -> &SectionId {
        &self.s.id
    }
    pub fn state(&self) -> SectionState {
        self.s.state
    }
    pub fn mode(&self) -> DecryptionMode {
        self.params.decryption_mode
    }

    /// Refuses `what` unless the section is in one of `allowed`.
    pub fn need_phase(&self, allowed: &[SectionState], what: &str) -> AppResult<()> {
        if allowed.contains(&self.state()) {
            Ok(())
        } else {
            Err(wrong_phase(self.state(), what))
        }
    }
}

/// The published section; drafts are not found.
pub(crate) fn load(c: &mut DbConn, id: &SectionId) -> AppResult<PublishedSection> {
    let (s, p) = sections_repo::section_with_project(c, id)?
        .ok_or_else(|| AppError::not_found("section"))?;
    if s.state == SectionState::Draft {
        return Err(AppError::not_found("section"));
    }
    let params = SectionParams::of(&s)?;
    Ok(PublishedSection { s, p, params })
}

pub(crate) fn wrong_phase(state: SectionState, what: &str) -> AppError {
    AppError::new(
        ErrorCode::InvalidTransition,
        format!("{what} is not possible while the section is {state}"),
    )
}

/// The section, for a host who runs it (any other host: forbidden).
pub(crate) fn hosted(
    c: &mut DbConn,
    a: &Actor,
    section_id: &SectionId,
    what: &str,
) -> AppResult<PublishedSection> {
    let x = load(c, section_id)?;
    let st = policy::standing(c, &a.user, &x.p, Some(section_id))?;
    policy::require_runs(&st, true, what)?;
    Ok(x)
}

/// The section, for its supervisor (any other: forbidden).
fn supervised(c: &mut DbConn, a: &Actor, section_id: &SectionId) -> AppResult<PublishedSection> {
    let x = load(c, section_id)?;
    let st = policy::standing(c, &a.user, &x.p, Some(section_id))?;
    if !st.supervises {
        return Err(AppError::forbidden("you do not supervise this section"));
    }
    Ok(x)
}

/// A free-text field of 1 to 2000 characters, trimmed.
pub(crate) fn bounded_text(field: &str, v: &str) -> AppResult<String> {
    let mut p = crate::domain::problems::Problems::new();
    let t = crate::service::text_field(&mut p, field, v, 1, MAX_TEXT);
    if p.is_empty() {
        Ok(t)
    } else {
        Err(AppError::validation(p.into_vec()))
    }
}

/// An organisation's name (its id when it is gone).
fn org_name(c: &mut DbConn, org: &OrgId) -> AppResult<String> {
    Ok(identity_repo::find_org(c, org)?
        .map(|o| o.name)
        .unwrap_or_else(|| org.to_string()))
}

/// Whether the decryption window is open at `now`: before its end, or with
/// its clock stopped by an incident. The window's end is exact to the
/// millisecond whether or not the chronograph has got to it yet.
fn window_open(o: &OpeningRow, now: i64) -> bool {
    o.paused_since.is_some() || o.window_ends_at.is_some_and(|end| now < end)
}

fn window_closed(o: &OpeningRow) -> AppError {
    AppError::new(
        ErrorCode::InvalidTransition,
        format!(
            "the decryption window closed at {}",
            Timestamp::from_millis(o.window_ends_at.unwrap_or_default()).shanghai_rfc3339()
        ),
    )
}
