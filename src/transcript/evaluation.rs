//! The evaluation (评标) part of a transcript, once the candidates are
//! published (before that the committee is confidential and nothing of it
//! is exported), and its offline check.
//!
//! The log already holds the draw's commitments (the seed's commitment, the
//! pool snapshot's hash, the hash of the parties to avoid, the request), the
//! report's hash, and at publication the seed itself and the candidates. The
//! transcript adds the snapshot, the parties, the seats with the passes that
//! admitted them, every signed review and score, the report and its
//! signatures, and the centres trusted at the time. From these the verifier
//! recomputes the draw and the whole result and checks every signature.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::crypto::{jcs, sha256_hex, sign};
use crate::domain::decimal::Money;
use crate::evaluation::draw::{self, DrawRequest, DrawResult, Parties, Snapshot};
use crate::evaluation::pass::{self, Centre, Pass, Trust};
use crate::evaluation::scoring::{self, BidIn, EvalInput, EvalOutcome, ItemScore, Vote};
use crate::evaluation::statements::{
    ClarificationAnswerStatement, ClarificationStatement, ExpertStatement, OutlierStatement,
    RecusalStatement, CLARIFICATION_ANSWER_LABEL,
};
use crate::service::evaluation::{
    ReportStatement, ScoreStatement, VoteStatement, REPORT_LABEL, SCORE_LABEL, VOTE_LABEL,
};
use crate::service::sections::SectionParams;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvaluationExtract {
    pub request: DrawRequest,
    pub parties: Parties,
    pub snapshot: Snapshot,
    /// The draw's seed, hex (revealed at publication).
    pub seed: String,
    pub draw: DrawResult,
    /// The centres this centre trusted (its own included).
    pub centres: Vec<Centre>,
    pub seats: Vec<SeatEntry>,
    pub votes: Vec<SignedText>,
    pub scores: Vec<SignedText>,
    /// The report exactly as hashed and signed (canonical JSON text).
    pub report: String,
    pub report_signatures: Vec<ReportSignatureEntry>,
    /// Members' signed recusals (回避), whole (the log holds their hashes).
    pub recusals: Vec<SignedText>,
    /// Flagged members' signed confirmations of a score far from the median.
    pub outlier_confirmations: Vec<SignedText>,
    /// Clarifications (澄清): the expert's signed question and the bidder's
    /// signed answer.
    pub clarifications: Vec<ClarificationEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClarificationEntry {
    pub id: String,
    pub question: SignedText,
    /// Signed with the bidder's registered signing key; none if unanswered.
    pub answer: Option<SignedText>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeatEntry {
    pub expert_id: String,
    pub specialty: String,
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pass: Option<Pass>,
}

/// A signed statement: its canonical JSON text and the expert's signature.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedText {
    pub statement: String,
    pub signature: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportSignatureEntry {
    pub expert_id: String,
    pub agree: bool,
    pub dissent: Option<String>,
    pub deemed: bool,
    pub statement: Option<String>,
    pub signature: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EvaluationSummary {
    pub recusals: usize,
    pub outlier_confirmations: usize,
    pub clarifications: usize,
    pub committee: usize,
    pub skipped_for_conflict: usize,
    pub reviews: usize,
    pub scores: usize,
    pub candidates: Vec<String>,
    pub dissents: usize,
    pub deemed_agreed: usize,
    pub awarded: Option<String>,
}

macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+));
        }
    };
}

fn json_hash<T: Serialize>(v: &T) -> Result<String, String> {
    Ok(sha256_hex(&jcs::to_vec(v).map_err(|e| e.to_string())?))
}

/// Parses a signed statement and checks that its text is canonical and its
/// signature is the seat's key's.
fn statement<T: serde::de::DeserializeOwned + Serialize>(
    s: &SignedText,
    key: &str,
    label: &str,
    what: &str,
) -> Result<T, String> {
    let v: T = serde_json::from_str(&s.statement).map_err(|e| format!("{what}: {e}"))?;
    ensure!(
        jcs::to_vec(&v).map_err(|e| e.to_string())? == s.statement.as_bytes(),
        "{what}: the statement is not in canonical form"
    );
    sign::verify_hex(key, label, s.statement.as_bytes(), &s.signature)
        .map_err(|_| format!("{what}: the signature does not verify with the expert's key"))?;
    Ok(v)
}

/// Checks the evaluation against the log and the announced record;
/// `Ok(None)` when nothing has been published yet.
pub(super) fn verify(
    section_id: &str,
    params: &SectionParams,
    log: &BTreeMap<u64, &Value>,
    bidder_keys: &std::collections::HashSet<(&str, &str, &str)>,
    extract: Option<&EvaluationExtract>,
) -> Result<Option<EvaluationSummary>, String> {
    let of = |ty: &str| -> Vec<&Value> {
        log.values()
            .filter(|l| l["section_id"] == section_id && l["type"] == ty)
            .copied()
            .collect()
    };
    let published = of("evaluation.published");
    let Some(published) = published.first() else {
        ensure!(
            extract.is_none(),
            "the transcript has evaluation material but the log publishes no result"
        );
        return Ok(None);
    };
    let x = extract.ok_or("the log publishes a result but the transcript omits the evaluation")?;

    // 1. The draw: the seed matches its commitment, the snapshot, parties
    //    and request match what was logged before the draw, and the draw
    //    recomputes exactly.
    let drawn = of("evaluation.committee_drawn");
    ensure!(drawn.len() == 1, "the log must record exactly one draw");
    let drawn = drawn[0];
    let seed: [u8; 32] =
        crate::crypto::hex_array(&x.seed).ok_or("the seed is not 32 bytes of hex")?;
    ensure!(
        drawn["seed_commitment"] == draw::seed_commitment(&seed).as_str(),
        "the seed does not match the commitment logged before the draw"
    );
    ensure!(
        published["seed"] == x.seed.as_str(),
        "the seed differs from the one revealed in the log"
    );
    ensure!(
        drawn["snapshot_hash"] == x.snapshot.hash().as_str(),
        "the pool snapshot differs from the one logged before the draw"
    );
    ensure!(
        drawn["parties_hash"] == json_hash(&x.parties)?.as_str(),
        "the parties to avoid differ from those logged before the draw"
    );
    ensure!(
        drawn["request"] == serde_json::to_value(&x.request).map_err(|e| e.to_string())?,
        "the draw's request differs from the logged one"
    );
    let recomputed = draw::draw(&x.request, &x.parties, &x.snapshot, &seed)
        .map_err(|e| format!("the draw does not recompute: {e}"))?;
    ensure!(
        recomputed == x.draw,
        "the draw recomputed from the seed and the snapshot differs from the recorded one"
    );

    // 2. Seats: only drawn experts, reserves called in order; each sitting
    //    member admitted by a pass from a trusted centre for this section.
    let mut trust = Trust::default();
    for c in &x.centres {
        trust
            .add(c.clone())
            .map_err(|e| format!("centre {}: {e}", c.code))?;
    }
    let drawn_ids: BTreeSet<&str> = x
        .draw
        .members
        .iter()
        .chain(&x.draw.reserves)
        .map(|s| s.expert_id.as_str())
        .collect();
    super::distinct(&x.centres, |c| c.code.clone(), "centres")?;
    super::distinct(&x.seats, |s| s.expert_id.clone(), "seats")?;
    super::distinct(&x.votes, |v| v.statement.clone(), "reviews")?;
    super::distinct(&x.scores, |v| v.statement.clone(), "scores")?;
    super::distinct(&x.recusals, |v| v.statement.clone(), "recusals")?;
    super::distinct(
        &x.outlier_confirmations,
        |v| v.statement.clone(),
        "outlier confirmations",
    )?;
    super::distinct(&x.clarifications, |c| c.id.clone(), "clarifications")?;
    let mut keys: BTreeMap<&str, &str> = BTreeMap::new();
    let mut panel = Vec::new();
    for s in &x.seats {
        ensure!(
            drawn_ids.contains(s.expert_id.as_str()),
            "seat {}: not drawn",
            s.expert_id
        );
        // Members who sit, and members who recused after being admitted
        // (their signed work is kept and checked, but does not count).
        let sits = s.status == "confirmed";
        if !(sits || s.status == "recused" && s.pass.is_some()) {
            continue;
        }
        let p = s
            .pass
            .as_ref()
            .ok_or_else(|| format!("seat {}: no pass", s.expert_id))?;
        let b = pass::admit(p, &trust, section_id, p.pass.issued_at_ms)
            .map_err(|e| format!("seat {}: {e}", s.expert_id))?;
        ensure!(
            b.expert_id == s.expert_id,
            "seat {}: the pass names another expert",
            s.expert_id
        );
        let home = x
            .snapshot
            .experts
            .iter()
            .find(|e| e.expert_id == s.expert_id);
        ensure!(
            home.is_some_and(|e| e.centre == b.centre),
            "seat {}: the pass is not from the expert's home centre",
            s.expert_id
        );
        keys.insert(s.expert_id.as_str(), b.expert_key.as_str());
        if sits {
            panel.push(s.expert_id.clone());
        }
    }
    let wanted: u32 = x.request.requirements.iter().map(|q| q.count).sum();
    ensure!(
        panel.len() as u32 == wanted,
        "{} experts sat, the request asked for {wanted}",
        panel.len()
    );

    // 3. Every review and score is signed by its expert's pass key.
    let mut votes = Vec::new();
    for (i, v) in x.votes.iter().enumerate() {
        let what = format!("review {i}");
        let probe: VoteStatement =
            serde_json::from_str(&v.statement).map_err(|e| format!("{what}: {e}"))?;
        let key = keys
            .get(probe.expert_id.as_str())
            .ok_or_else(|| format!("{what}: not a member"))?;
        let st: VoteStatement = statement(v, key, VOTE_LABEL, &what)?;
        ensure!(st.section_id == section_id, "{what}: another section");
        if !panel.contains(&st.expert_id) {
            continue;
        }
        votes.push(Vote {
            expert: st.expert_id,
            bid: st.bid,
            pass: st.pass,
            reason: st.reason,
        });
    }
    let mut scores = Vec::new();
    for (i, v) in x.scores.iter().enumerate() {
        let what = format!("score {i}");
        let probe: ScoreStatement =
            serde_json::from_str(&v.statement).map_err(|e| format!("{what}: {e}"))?;
        let key = keys
            .get(probe.expert_id.as_str())
            .ok_or_else(|| format!("{what}: not a member"))?;
        let st: ScoreStatement = statement(v, key, SCORE_LABEL, &what)?;
        ensure!(st.section_id == section_id, "{what}: another section");
        if !panel.contains(&st.expert_id) {
            continue;
        }
        scores.push(ItemScore {
            expert: st.expert_id,
            bid: st.bid,
            item: st.item,
            points: st.points,
        });
    }

    // 4. The result recomputes from the announced bids, the reviews and the
    //    scores, and it is what the signed report says.
    let announced = log
        .values()
        .find(|l| l["section_id"] == section_id && l["type"] == "opening.announced")
        .ok_or("no announced record to evaluate")?;
    let mut bids = Vec::new();
    for (i, b) in announced["record"]["bids"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        if b["status"] != "decrypted" {
            continue;
        }
        bids.push(BidIn {
            bid: b["envelope_hash"].as_str().unwrap_or_default().into(),
            bidder: b["bidder"].as_str().unwrap_or_default().into(),
            price: b["summary"]["price"]
                .as_str()
                .and_then(|p| Money::parse(p).ok())
                .ok_or("an announced bid without a price")?,
            order: i as u32,
        });
    }
    let k = draw::k_for(
        &seed,
        params
            .evaluation
            .price
            .as_ref()
            .map(|f| f.k_coefficients.as_slice())
            .unwrap_or(&[]),
    );
    let input = EvalInput {
        spec: params.evaluation.clone(),
        k,
        panel: panel.clone(),
        bids,
        votes,
        scores,
    };
    let outcome =
        scoring::evaluate(&input).map_err(|e| format!("the result does not recompute: {e}"))?;
    let report: Value = serde_json::from_str(&x.report).map_err(|e| format!("report: {e}"))?;
    let report_hash = sha256_hex(x.report.as_bytes());
    ensure!(
        jcs::canonicalize(&report).map_err(|e| e.to_string())? == x.report.as_bytes(),
        "the report is not in canonical form"
    );
    let logged = of("evaluation.report");
    ensure!(
        logged.len() == 1 && logged[0]["report_hash"] == report_hash.as_str(),
        "the report does not hash to the report hash in the log"
    );
    let claimed: EvalOutcome = serde_json::from_value(report["outcome"].clone())
        .map_err(|e| format!("report outcome: {e}"))?;
    ensure!(
        claimed == outcome,
        "the report's result differs from the one recomputed from the signed scores"
    );
    ensure!(
        report["panel"] == serde_json::to_value(&panel).map_err(|e| e.to_string())?
            && report["section_id"] == section_id
            && report["k"] == serde_json::to_value(k).map_err(|e| e.to_string())?,
        "the report names another panel, section or K coefficient"
    );
    ensure!(
        published["report_hash"] == report_hash.as_str()
            && published["candidates"]
                == serde_json::to_value(&outcome.candidates).map_err(|e| e.to_string())?,
        "the published candidates or report differ from the recomputed result"
    );

    // 5. Every member signed the report (or is recorded as agreeing by
    //    silence, only after the signing time).
    let mut signed = BTreeSet::new();
    let (mut dissents, mut deemed) = (0, 0);
    for r in &x.report_signatures {
        ensure!(
            panel.contains(&r.expert_id),
            "report signature by {}: not a sitting member",
            r.expert_id
        );
        let key = keys
            .get(r.expert_id.as_str())
            .ok_or_else(|| format!("report signature by {}: not a member", r.expert_id))?;
        ensure!(
            signed.insert(r.expert_id.as_str()),
            "{} signed the report twice",
            r.expert_id
        );
        if r.deemed {
            ensure!(
                r.agree && r.signature.is_none(),
                "{}: a deemed agreement with a signature",
                r.expert_id
            );
            deemed += 1;
            continue;
        }
        let st: ReportStatement = statement(
            &SignedText {
                statement: r.statement.clone().unwrap_or_default(),
                signature: r.signature.clone().unwrap_or_default(),
            },
            key,
            REPORT_LABEL,
            &format!("report signature by {}", r.expert_id),
        )?;
        ensure!(
            st.report_hash == report_hash && st.agree == r.agree && st.dissent == r.dissent,
            "report signature by {}: signs something else",
            r.expert_id
        );
        if !r.agree {
            dissents += 1;
        }
    }
    ensure!(
        signed.len() == panel.len(),
        "{} of {} members signed the report",
        signed.len(),
        panel.len()
    );
    ensure!(
        published["deemed_agreed"] == deemed,
        "the log and the transcript disagree on who was silent"
    );

    // 6. The panel's own record: recusals, outlier confirmations and
    //    clarifications, each signed, each the one the log holds by hash.
    panel_record(section_id, x, &keys, &of, &outcome, bidder_keys)?;

    // 7. The award, if any, went to the first of the ranking.
    let awarded = of("evaluation.awarded");
    let winner = match awarded.first() {
        Some(a) => {
            ensure!(
                a["winner_bid"]
                    == serde_json::to_value(outcome.ranking.first().map(|r| &r.bid))
                        .map_err(|e| e.to_string())?,
                "the award went to another bid than the first of the ranking"
            );
            outcome.ranking.first().map(|r| r.bidder.clone())
        }
        None => None,
    };
    Ok(Some(EvaluationSummary {
        recusals: x.recusals.len(),
        outlier_confirmations: x.outlier_confirmations.len(),
        clarifications: x.clarifications.len(),
        committee: panel.len(),
        skipped_for_conflict: x.draw.skipped.len(),
        reviews: x.votes.len(),
        scores: x.scores.len(),
        candidates: outcome.candidates,
        dissents,
        deemed_agreed: deemed,
        awarded: winner,
    }))
}

/// A statement signed by an admitted member (recused ones included): parsed,
/// canonical, for this section, and signed with the key of the member's pass
/// under its label.
fn member_statement<T: ExpertStatement + serde::de::DeserializeOwned>(
    s: &SignedText,
    keys: &BTreeMap<&str, &str>,
    section_id: &str,
    what: &str,
) -> Result<T, String> {
    let probe: T = serde_json::from_str(&s.statement).map_err(|e| format!("{what}: {e}"))?;
    let key = keys.get(probe.expert_id()).ok_or_else(|| {
        format!(
            "{what}: {} was not admitted to the panel",
            probe.expert_id()
        )
    })?;
    let st: T = statement(s, key, T::LABEL, what)?;
    ensure!(st.section_id() == section_id, "{what}: another section");
    Ok(st)
}

/// A statement the log holds by `statement_hash` in exactly one leaf of
/// `leaves` that also satisfies `names`.
fn logged_once(leaves: &[&Value], text: &str, names: impl Fn(&Value) -> bool) -> bool {
    let h = sha256_hex(text.as_bytes());
    leaves
        .iter()
        .filter(|l| l["statement_hash"] == h.as_str() && names(l))
        .count()
        == 1
}

/// Recusals, outlier confirmations and clarifications (PROTOCOL §14.6).
fn panel_record<'a>(
    section_id: &str,
    x: &EvaluationExtract,
    keys: &BTreeMap<&str, &str>,
    of: &impl Fn(&str) -> Vec<&'a Value>,
    outcome: &EvalOutcome,
    bidder_keys: &std::collections::HashSet<(&str, &str, &str)>,
) -> Result<(), String> {
    // Recusals: one per recused seat, signed, logged.
    let leaves = of("evaluation.expert_recused");
    ensure!(
        leaves.len() == x.recusals.len(),
        "the log records {} recusals, the transcript carries {}",
        leaves.len(),
        x.recusals.len()
    );
    let mut recused = BTreeSet::new();
    for (i, r) in x.recusals.iter().enumerate() {
        let what = format!("recusal {i}");
        let st: RecusalStatement = member_statement(r, keys, section_id, &what)?;
        ensure!(
            logged_once(&leaves, &r.statement, |l| l["reason_hash"]
                == sha256_hex(st.reason.as_bytes()).as_str()),
            "{what}: not the recusal the log holds"
        );
        recused.insert(st.expert_id);
    }
    let seats: BTreeSet<String> = x
        .seats
        .iter()
        .filter(|s| s.status == "recused")
        .map(|s| s.expert_id.clone())
        .collect();
    ensure!(
        seats == recused,
        "the recused seats and the signed recusals differ"
    );
    // Outlier confirmations: every outlier of the result confirmed by its
    // expert, every confirmation signed and logged.
    let leaves = of("evaluation.outlier_confirmed");
    ensure!(
        leaves.len() == x.outlier_confirmations.len(),
        "the log records {} outlier confirmations, the transcript carries {}",
        leaves.len(),
        x.outlier_confirmations.len()
    );
    let mut confirmed = BTreeSet::new();
    for (i, o) in x.outlier_confirmations.iter().enumerate() {
        let what = format!("outlier confirmation {i}");
        let st: OutlierStatement = member_statement(o, keys, section_id, &what)?;
        ensure!(
            logged_once(&leaves, &o.statement, |l| l["bid"] == st.bid.as_str()),
            "{what}: not the confirmation the log holds"
        );
        confirmed.insert((st.expert_id, st.bid));
    }
    for o in &outcome.outliers {
        ensure!(
            confirmed.contains(&(o.expert.clone(), o.bid.clone())),
            "{}'s total for bid {} is an outlier without a signed confirmation",
            o.expert,
            o.bid
        );
    }
    // Clarifications: the question by a member, the answer by the bidder.
    let asked = of("evaluation.clarification_asked");
    let answered = of("evaluation.clarification_answered");
    ensure!(
        asked.len() == x.clarifications.len()
            && answered.len()
                == x.clarifications
                    .iter()
                    .filter(|c| c.answer.is_some())
                    .count(),
        "the log and the transcript disagree on the clarifications"
    );
    let announced = of("opening.announced");
    let bidder_of = |bid: &str| -> Option<String> {
        announced.first()?["record"]["bids"]
            .as_array()?
            .iter()
            .find(|b| b["envelope_hash"] == bid)
            .and_then(|b| b["bidder"].as_str().map(str::to_string))
    };
    for c in &x.clarifications {
        let what = format!("clarification {}", c.id);
        let q: ClarificationStatement = member_statement(&c.question, keys, section_id, &what)?;
        ensure!(
            logged_once(&asked, &c.question.statement, |l| l["clarification"]
                == c.id.as_str()
                && l["bid"] == q.bid.as_str()),
            "{what}: not the question the log holds"
        );
        let Some(a) = &c.answer else { continue };
        let st: ClarificationAnswerStatement =
            serde_json::from_str(&a.statement).map_err(|e| format!("{what} answer: {e}"))?;
        ensure!(
            jcs::to_vec(&st).map_err(|e| e.to_string())? == a.statement.as_bytes(),
            "{what} answer: the statement is not in canonical form"
        );
        ensure!(
            st.section_id == section_id && st.clarification_id == c.id && st.bid == q.bid,
            "{what}: the answer is to another question"
        );
        let bidder = bidder_of(&q.bid).ok_or_else(|| format!("{what}: not an announced bid"))?;
        ensure!(
            bidder_keys.iter().any(|(b, purpose, k)| *b == bidder
                && *purpose == "bidder_signing"
                && sign::verify_hex(
                    k,
                    CLARIFICATION_ANSWER_LABEL,
                    a.statement.as_bytes(),
                    &a.signature
                )
                .is_ok()),
            "{what}: the answer is not signed by the bidder's registered signing key"
        );
        ensure!(
            logged_once(&answered, &a.statement, |l| l["clarification"]
                == c.id.as_str()),
            "{what}: not the answer the log holds"
        );
    }
    Ok(())
}
