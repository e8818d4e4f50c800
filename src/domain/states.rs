//! The closed sets of states below the section's lifecycle (that one is in
//! [`super::section::SectionState`]): submissions, bids, their opening, the
//! evaluation and its seats, jobs and mail. Each that moves has its state
//! machine here, and every stored change of it is a compare-and-set from a
//! state for which [`Lifecycle::can_become`] holds (`service::transition`).

use crate::text_enum;

/// A state machine over a closed set of states.
pub trait Lifecycle: Copy + Eq + std::fmt::Display + 'static {
    /// What moves through these states, for messages ("the section").
    const WHAT: &'static str;
    fn can_become(self, to: Self) -> bool;
}

impl Lifecycle for super::section::SectionState {
    const WHAT: &'static str = "section";
    fn can_become(self, to: Self) -> bool {
        super::section::SectionState::can_become(self, to)
    }
}

text_enum! {
    /// A submission (one revision of one bidder's bid) before the deadline.
    pub enum SubmissionState {
        /// The envelope is accepted; parts are being uploaded.
        Receiving = "receiving",
        /// Every part is stored and checked; a receipt was issued.
        Complete = "complete",
        /// A later complete revision took its place.
        Superseded = "superseded",
        Withdrawn = "withdrawn",
        /// Still receiving at the deadline.
        Abandoned = "abandoned",
    }
}

impl Lifecycle for SubmissionState {
    const WHAT: &'static str = "submission";
    fn can_become(self, to: Self) -> bool {
        use SubmissionState::*;
        matches!(
            (self, to),
            (Receiving, Complete)
                | (Receiving, Abandoned)
                | (Receiving, Withdrawn)
                | (Receiving, Superseded)
                | (Complete, Superseded)
                | (Complete, Withdrawn)
        )
    }
}

text_enum! {
    /// A bid as filed away at the sealing: what the deadline found.
    pub enum BidStatus {
        /// Complete and the bidder's latest revision: it is opened.
        Accepted = "accepted",
        Superseded = "superseded",
        Withdrawn = "withdrawn",
        /// Not complete at the deadline.
        Incomplete = "incomplete",
    }
}

text_enum! {
    /// Where a late attempt was refused.
    pub enum LateStage {
        Envelope = "envelope",
        Part = "part",
        Withdrawal = "withdrawal",
    }
}

text_enum! {
    /// One bid in the opening's decryption (DESIGN §4).
    pub enum OpeningStatus {
        Pending = "pending",
        Decrypted = "decrypted",
        /// 撤销: the bidder's fault (it did not decrypt, or its bid does not open).
        Revoked = "revoked",
        /// 撤回: not decrypted because of a recorded platform fault.
        Withdrawn = "withdrawn",
    }
}

impl Lifecycle for OpeningStatus {
    const WHAT: &'static str = "bid";
    fn can_become(self, to: Self) -> bool {
        self == OpeningStatus::Pending && to != OpeningStatus::Pending
    }
}

text_enum! {
    /// How an opening ended, as its signed record (开标记录) says.
    pub enum RecordOutcome {
        /// The 开标一览表 was read out (唱标).
        Announced = "announced",
        /// Too few bids decrypted: the section failed (流标).
        Failed = "failed",
    }
}

text_enum! {
    /// Whose fault a bid that did not open is.
    pub enum Fault {
        Bidder = "bidder",
        Platform = "platform",
    }
}

text_enum! {
    /// How a bid was opened (or who failed to open it).
    pub enum DecryptedVia {
        /// The custodians' released keys (custodian mode).
        Custodians = "custodians",
        /// The bidder's own key (bidder modes).
        Bidder = "bidder",
        /// The custodian quorum for bids a platform fault left (escrow).
        Escrow = "escrow",
    }
}

text_enum! {
    /// The evaluation of a section (DESIGN §6), inside its `evaluating`,
    /// `publicity` and `awarded` states.
    pub enum EvaluationPhase {
        /// The committee is drawn; experts answer and are admitted.
        Seating = "seating",
        /// Qualification review (资格审查).
        Reviewing = "reviewing",
        Scoring = "scoring",
        /// The report is written; members sign it.
        Signing = "signing",
        /// The candidates are publicised (公示).
        Publicity = "publicity",
        Awarded = "awarded",
    }
}

impl Lifecycle for EvaluationPhase {
    const WHAT: &'static str = "evaluation";
    fn can_become(self, to: Self) -> bool {
        use EvaluationPhase::*;
        matches!(
            (self, to),
            (Seating, Reviewing)
                | (Reviewing, Scoring)
                | (Scoring, Signing)
                | (Signing, Publicity)
                | (Publicity, Awarded)
        )
    }
}

impl EvaluationPhase {
    /// While the committee works (members may still be replaced).
    pub fn is_sitting(self) -> bool {
        matches!(self, Self::Seating | Self::Reviewing | Self::Scoring)
    }
}

text_enum! {
    /// One seat of a drawn committee.
    pub enum SeatStatus {
        /// A reserve not called (yet).
        Standby = "standby",
        /// Called by e-mail; waiting for the answer.
        Called = "called",
        Confirmed = "confirmed",
        /// Declined, or did not answer in time.
        Declined = "declined",
        /// Withdrew for a conflict of interest (回避) after confirming.
        Recused = "recused",
    }
}

impl Lifecycle for SeatStatus {
    const WHAT: &'static str = "seat";
    fn can_become(self, to: Self) -> bool {
        use SeatStatus::*;
        matches!(
            (self, to),
            (Standby, Called)
                | (Called, Confirmed)
                | (Called, Declined)
                | (Confirmed, Recused)
                // Admission writes the pass into a confirmed seat.
                | (Confirmed, Confirmed)
        )
    }
}

text_enum! {
    /// The timed steps the chronograph performs.
    pub enum JobKind {
        /// The bid deadline: the section is sealed.
        SectionDeadline = "section.deadline",
        /// The deadline plus the grace period: bids are filed away.
        SectionManifest = "section.manifest",
        /// The decryption window's end.
        OpeningWindowEnd = "opening.window_end",
        /// The custodian decryption, once enough keys are released.
        OpeningDecrypt = "opening.decrypt",
        /// Called experts who have not answered in time are replaced.
        EvaluationAnswerDue = "evaluation.answer_due",
        /// The time to reveal the seed's contributions ends: the committee
        /// is drawn with what was revealed.
        EvaluationRevealsDue = "evaluation.reveals_due",
        /// The end of the candidates' publicity.
        EvaluationPublicityEnd = "evaluation.publicity_end",
    }
}

text_enum! {
    pub enum JobState {
        Pending = "pending",
        Done = "done",
        Cancelled = "cancelled",
    }
}

text_enum! {
    pub enum MailState {
        Pending = "pending",
        Sent = "sent",
        /// Given up after the last retry.
        Dead = "dead",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn never_returns_to_its_start<S: Lifecycle>(all: &[S], start: S) {
        for s in all {
            assert!(
                !s.can_become(start) || *s == start,
                "{s} must never return to {start}"
            );
        }
    }

    #[test]
    fn the_machines_only_move_forward() {
        never_returns_to_its_start(EvaluationPhase::ALL, EvaluationPhase::Seating);
        never_returns_to_its_start(OpeningStatus::ALL, OpeningStatus::Pending);
        never_returns_to_its_start(SubmissionState::ALL, SubmissionState::Receiving);
        assert!(!EvaluationPhase::Seating.can_become(EvaluationPhase::Scoring));
        assert!(!OpeningStatus::Decrypted.can_become(OpeningStatus::Revoked));
        assert!(!SeatStatus::Declined.can_become(SeatStatus::Confirmed));
        assert!(SeatStatus::Standby.can_become(SeatStatus::Called));
    }
}
