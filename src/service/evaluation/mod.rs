//! Remote expert evaluation (远程异地评标, DESIGN §6): the expert pool, the
//! verifiable draw right after the opening, drawn experts confirming or
//! declining (a decline or a no-show calls the next reserve), passes from
//! trusted centres, the experts' signed reviews and scores, the report
//! every member signs, the candidates' publicity with objections, and the
//! award.
//!
//! Confidentiality: the committee's identities never go into room events or
//! log leaves before the result; the platform's seed and the mixed seed are
//! sealed at rest and only the platform seed's commitment is logged.
//!
//! | file            | owns                                                       |
//! |-----------------|------------------------------------------------------------|
//! | `mod.rs`        | the drawn evaluation, its panel, the announced bids        |
//! | `pool.rs`       | the expert pool as CSV (import all-or-nothing, export)     |
//! | `centres.rs`    | the centres trusted, pinned, and their registrations logged |
//! | `seed.rs`       | the seed's contributions: commitments, reveals, withheld   |
//! | `seating.rs`    | the draw, answers, no-shows and reserves, the host's view  |
//! | `passes.rs`     | admitting passes from trusted centres; home-centre passes  |
//! | `statements.rs` | checking that a statement is signed by a sitting member    |
//! | `review.rs`     | qualification reviews and the majority's decision          |
//! | `scores.rs`     | signed scores, group-committed                             |
//! | `report.rs`     | the result, the report and its signatures                  |
//! | `panel.rs`      | outlier flags, recusals (回避), clarifications (澄清)        |
//! | `publicity.rs`  | publication of the candidates, objections, the award       |

mod centres;
mod panel;
mod passes;
mod pool;
mod publicity;
mod report;
mod review;
mod scores;
mod seating;
mod seed;
mod statements;

pub use crate::evaluation::statements::{
    sign_statement, ClarificationAnswerStatement, ClarificationStatement, EvaluationReport,
    OutlierStatement, RecusalStatement, ReportStatement, ScoreStatement, VoteStatement,
    CLARIFICATION_ANSWER_LABEL, CLARIFICATION_LABEL, OUTLIER_LABEL, RECUSAL_LABEL, REPORT_FORMAT,
    REPORT_LABEL, SCORE_LABEL, VOTE_LABEL,
};
pub use centres::{load_trust, log_centres};
pub use panel::{
    answer_clarification, ask_clarification, confirm_outlier, recuse, ClarificationAnswer,
    ClarificationAnswered, ClarificationAsked, OutlierConfirmed, OutlierFlag, Recused,
};
pub use passes::{admit, home_pass, issue_pass, ExpertAdmitted, PassRequest};
pub use pool::{export_pool, import_pool, parse_pool_csv, pool_csv, PoolImported, CSV_COLUMNS};
pub use publicity::{
    answer_objection, end_publicity, public_result, publish, raise_objection, Candidate,
    CandidatesPublished, CommitteeMember, ObjectionText, PublicResult, PublicityEnd,
    PublicityState, ResultObjectionAnswered, ResultObjectionRaised, ResultObjectionView,
    SignatureView,
};
pub use report::{eval_input, finish, sign_report, Finished, ReportSigned};
pub use review::{vote, ReviewRecorded};
pub use scores::{score, ScoreWriter, ScoresRecorded, MAX_SHEET};
pub use seating::{
    answer, answers_due, draw_committee, status, AnswerRequest, AnswersDue, CommitteeDrawn,
    DrawAnswered, DrawRequested, EvaluationStatus, OutcomeSoFar, SeatCounts,
};
pub(crate) use seating::{platform_seed_label, seed_label};
pub use seed::{
    commit_contribution, draw_seed, reveal_contribution, reveals_due, ContributionCommitted,
    ContributionRevealed, ContributorView, DrawSeedView, RevealRequest, RevealsDue,
};
pub use statements::Signed;

use std::collections::BTreeMap;

use crate::crypto::opening::OpeningRecord;
use crate::db::audit::Who;
use crate::db::evaluation::{self as repo, EvaluationRow, SeatRow};
use crate::db::{opening as opening_repo, DbConn};
use crate::domain::decimal::Money;
use crate::domain::ids::SectionId;
use crate::domain::states::{OpeningStatus, SeatStatus};
use crate::error::{AppError, AppResult, ErrorCode};
use crate::evaluation::draw::DrawRequest;
use crate::evaluation::scoring::BidIn;

/// The section's evaluation; refused while no committee has been drawn.
fn drawn(c: &mut DbConn, section_id: &SectionId) -> AppResult<EvaluationRow> {
    repo::find(c, section_id)?.ok_or_else(|| {
        AppError::new(
            ErrorCode::InvalidTransition,
            "no committee has been drawn for this section",
        )
    })
}

/// Seats of the request still without a confirmed expert.
fn seats_missing(ev: &EvaluationRow, seats: &[SeatRow]) -> AppResult<u32> {
    let req: DrawRequest = serde_json::from_str(&ev.request_json).map_err(AppError::internal)?;
    Ok(req
        .requirements
        .iter()
        .map(|q| {
            let have = seats
                .iter()
                .filter(|s| s.specialty == q.specialty && s.status == SeatStatus::Confirmed)
                .count() as u32;
            q.count.saturating_sub(have)
        })
        .sum())
}

/// The experts sitting now: confirmed members, in draw order.
fn panel(seats: &[SeatRow]) -> Vec<&SeatRow> {
    seats
        .iter()
        .filter(|s| s.status == SeatStatus::Confirmed)
        .collect()
}

/// Seats counted by specialty and status (never names).
fn committee_counts(seats: &[SeatRow]) -> SeatCounts {
    let mut by: SeatCounts = BTreeMap::new();
    for s in seats {
        *by.entry(s.specialty.clone())
            .or_default()
            .entry(s.status.to_string())
            .or_default() += 1;
    }
    by
}

/// Who an expert's action is recorded as: experts hold no account here,
/// their signed statement is the record.
fn by_expert() -> Who {
    Who {
        actor_id: None,
        request_id: None,
    }
}

/// The chronograph, as the actor of its steps.
fn by_chronograph() -> Who {
    Who {
        actor_id: None,
        request_id: Some("chronograph".into()),
    }
}

/// The bids as the opening record announced them: the ones that decrypted,
/// with their prices, in the record's order.
fn announced_bids(c: &mut DbConn, section_id: &SectionId) -> AppResult<Vec<BidIn>> {
    let o = opening_repo::find(c, section_id)?
        .and_then(|o| o.record_json)
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("evaluating without a record")))?;
    let r: OpeningRecord = serde_json::from_str(&o).map_err(AppError::internal)?;
    let mut out = Vec::new();
    for (i, b) in r.bids.into_iter().enumerate() {
        if b.status != OpeningStatus::Decrypted {
            continue;
        }
        let price = b
            .summary
            .as_ref()
            .and_then(|s| s.get("price"))
            .and_then(|p| Money::parse(p).ok())
            .ok_or_else(|| {
                AppError::internal(anyhow::anyhow!("a decrypted bid without a price"))
            })?;
        out.push(BidIn {
            bid: b.envelope_hash,
            bidder: b.bidder,
            price,
            order: i as u32,
        });
    }
    Ok(out)
}
