//! What experts sign in the room, and the report they sign (DESIGN §6,
//! `docs/PROTOCOL.md` §14): each statement is a JSON object, canonicalised
//! with JCS and signed with the key of the expert's pass over
//! `label || 0x00 || JCS(statement)`. The room checks them
//! (`service::evaluation`); `kaibiao verify` checks them again from the
//! transcript.

use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::scoring::EvalOutcome;
use crate::crypto::{jcs, sign};
use crate::domain::decimal::{Points, Ratio};
use crate::domain::evaluation::EvaluationSpec;

pub const VOTE_LABEL: &str = "kaibiao/evaluation-vote/v1";
pub const SCORE_LABEL: &str = "kaibiao/evaluation-score/v1";
pub const REPORT_LABEL: &str = "kaibiao/evaluation-report/v1";
pub const OUTLIER_LABEL: &str = "kaibiao/evaluation-outlier/v1";
pub const RECUSAL_LABEL: &str = "kaibiao/evaluation-recusal/v1";
pub const CLARIFICATION_LABEL: &str = "kaibiao/evaluation-clarification/v1";
pub const CLARIFICATION_ANSWER_LABEL: &str = "kaibiao/clarification-answer/v1";
pub const REPORT_FORMAT: &str = "kaibiao-evaluation-report/1";

/// A qualification review (资格审查) of one bid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VoteStatement {
    pub section_id: String,
    pub expert_id: String,
    /// The bid's envelope hash.
    pub bid: String,
    pub pass: bool,
    /// Required when failing the bid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A score for one item of one qualified bid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScoreStatement {
    pub section_id: String,
    pub expert_id: String,
    pub bid: String,
    pub item: String,
    pub points: Points,
}

/// A signature on the evaluation report, agreeing or dissenting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportStatement {
    pub section_id: String,
    pub expert_id: String,
    pub report_hash: String,
    pub agree: bool,
    /// Required when disagreeing (the dissent, 不同意见), optional otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dissent: Option<String>,
}

/// A flagged expert confirming a score far from the panel's median.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OutlierStatement {
    pub section_id: String,
    pub expert_id: String,
    pub bid: String,
    pub reason: String,
}

/// A member recusing (回避) mid-session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecusalStatement {
    pub section_id: String,
    pub expert_id: String,
    pub reason: String,
}

/// A clarification (澄清) an expert asks of a bidder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClarificationStatement {
    pub section_id: String,
    pub expert_id: String,
    pub bid: String,
    pub question: String,
    /// How long the bidder has to answer, in minutes (5 to 1440).
    pub minutes: u32,
}

/// What a bidder signs, with its registered signing key, to answer a
/// clarification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClarificationAnswerStatement {
    pub section_id: String,
    pub clarification_id: String,
    pub bid: String,
    pub answer: String,
}

/// The evaluation report (`kaibiao-evaluation-report/1`): the result as the
/// platform computed it, which every member signs by its hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EvaluationReport {
    pub format: String,
    pub section_id: String,
    pub section_code: String,
    pub project_name: String,
    pub evaluation: EvaluationSpec,
    pub k: Option<Ratio>,
    /// The experts sitting at the end.
    pub panel: Vec<String>,
    pub seed_commitment: String,
    pub snapshot_hash: String,
    pub outcome: EvalOutcome,
    pub finished_at_ms: i64,
}

/// What every statement an expert signs has: its section, its expert, and
/// the label its signature is made under.
pub trait ExpertStatement: Serialize {
    const LABEL: &'static str;
    fn section_id(&self) -> &str;
    fn expert_id(&self) -> &str;
}

macro_rules! expert_statements {
    ($($t:ident => $label:ident),+ $(,)?) => {$(
        impl ExpertStatement for $t {
            const LABEL: &'static str = $label;
            fn section_id(&self) -> &str {
                &self.section_id
            }
            fn expert_id(&self) -> &str {
                &self.expert_id
            }
        }
    )+};
}

expert_statements! {
    VoteStatement => VOTE_LABEL,
    ScoreStatement => SCORE_LABEL,
    ReportStatement => REPORT_LABEL,
    OutlierStatement => OUTLIER_LABEL,
    RecusalStatement => RECUSAL_LABEL,
    ClarificationStatement => CLARIFICATION_LABEL,
}

/// Signs a statement the way the room checks it (the expert's client side).
pub fn sign_statement<T: Serialize>(key: &SigningKey, label: &str, st: &T) -> String {
    hex::encode(sign::sign(
        key,
        label,
        &jcs::to_vec(st).expect("plain JSON"),
    ))
}

/// A statement that does not verify.
#[derive(Debug, thiserror::Error)]
#[error("the signature does not verify")]
pub struct BadSignature;

/// Verifies `sig` by `key_hex` over the statement; returns its canonical text.
pub fn verify_statement<T: Serialize>(
    key_hex: &str,
    label: &str,
    st: &T,
    sig: &str,
) -> Result<String, BadSignature> {
    let bytes = jcs::to_vec(st).map_err(|_| BadSignature)?;
    sign::verify_hex(key_hex, label, &bytes, sig).map_err(|_| BadSignature)?;
    String::from_utf8(bytes).map_err(|_| BadSignature)
}
