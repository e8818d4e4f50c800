//! The one way a stored state moves: a compare-and-set from a state the
//! state machine allows to move there (`domain::states::Lifecycle`).
//!
//! An illegal move is refused before the database is asked, as a 409
//! `invalid_transition` in the envelope (never a CHECK failure answered as a
//! 500); a move that finds the row no longer in `from` (another request or
//! node moved it first) is a 409 `conflict`, and the caller's transaction
//! rolls back with it.

use crate::db::evaluation::{self as evaluation_repo, SeatRow};
use crate::db::{bids as bids_repo, sections as sections_repo, DbConn};
use crate::domain::ids::{SectionId, SubmissionId};
use crate::domain::section::SectionState;
use crate::domain::states::{EvaluationPhase, Lifecycle, SeatStatus, SubmissionState};
use crate::error::{AppError, AppResult, ErrorCode};

/// Refuses `from → to` unless the state machine allows it.
pub fn check<S: Lifecycle>(from: S, to: S) -> AppResult<()> {
    if from.can_become(to) {
        Ok(())
    } else {
        Err(AppError::new(
            ErrorCode::InvalidTransition,
            format!("a {} cannot go from {from} to {to}", S::WHAT),
        ))
    }
}

/// The answer when a compare-and-set found the row moved by someone else.
pub fn moved_meanwhile(what: &str) -> AppError {
    AppError::new(
        ErrorCode::Conflict,
        format!("the {what} changed meanwhile; reload and try again"),
    )
}

/// Moves a section `from → to`.
pub fn section(
    c: &mut DbConn,
    id: &SectionId,
    from: SectionState,
    to: SectionState,
    now: i64,
) -> AppResult<()> {
    check(from, to)?;
    match sections_repo::cas_state(c, id, from, to, now)? {
        1 => Ok(()),
        _ => Err(moved_meanwhile(SectionState::WHAT)),
    }
}

/// Moves a section's evaluation `from → to`.
pub fn evaluation(
    c: &mut DbConn,
    id: &SectionId,
    from: EvaluationPhase,
    to: EvaluationPhase,
    now: i64,
) -> AppResult<()> {
    check(from, to)?;
    match evaluation_repo::cas_phase(c, id, from, to, now)? {
        1 => Ok(()),
        _ => Err(moved_meanwhile(EvaluationPhase::WHAT)),
    }
}

/// Moves a submission `from → to`.
pub fn submission(
    c: &mut DbConn,
    id: &SubmissionId,
    from: SubmissionState,
    to: SubmissionState,
) -> AppResult<()> {
    check(from, to)?;
    match bids_repo::set_state(c, id, from, to)? {
        1 => Ok(()),
        _ => Err(moved_meanwhile(SubmissionState::WHAT)),
    }
}

/// Moves a seat to `to`, saving the row's other fields with it.
pub fn seat(c: &mut DbConn, seat: &mut SeatRow, to: SeatStatus) -> AppResult<()> {
    let from = seat.status;
    check(from, to)?;
    seat.status = to;
    match evaluation_repo::update_seat(c, seat, from)? {
        1 => Ok(()),
        _ => {
            seat.status = from;
            Err(moved_meanwhile(SeatStatus::WHAT))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    #[test]
    fn an_illegal_move_is_a_conflict_in_the_envelope_not_an_internal_error() {
        let e = check(SectionState::Awarded, SectionState::Published).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidTransition);
        assert_eq!(e.code.status().as_u16(), 409);
        assert!(e.message.contains("awarded"), "{}", e.message);
        assert!(check(SectionState::Sealed, SectionState::Decrypting).is_ok());
        let e = check(EvaluationPhase::Seating, EvaluationPhase::Signing).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidTransition);
    }
}
