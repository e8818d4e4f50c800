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

pub use super::keys::CentreEntry;
use crate::crypto::{jcs, sha256_hex, sign};
use crate::domain::decimal::Money;
use crate::evaluation::draw::{self, DrawRequest, DrawResult, Parties, Snapshot};
use crate::evaluation::pass::{self, Centre, Pass, Trust};
use crate::evaluation::scoring::{self, BidIn, EvalInput, EvalOutcome, ItemScore, Vote};
use crate::evaluation::seed;
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
    /// The draw's seed, hex (revealed at publication): the mix of the
    /// platform's seed and the contributors' values.
    pub seed: String,
    /// The platform's own seed, hex (revealed at publication).
    pub platform_seed: String,
    /// Every commitment to a value for the seed, signed by its party.
    pub contributions: Vec<ContributionEntry>,
    pub draw: DrawResult,
    /// The registration of every centre the draw drew from (the host's
    /// included), each signed by its centre and logged before the draw was
    /// asked for.
    pub centres: Vec<CentreEntry>,
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

/// A contributor's signed commitment to its value for the draw's seed.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContributionEntry {
    pub party: String,
    /// The key it is signed with: the supervisor's that countersigned the
    /// opening record, or the centre's.
    pub key: String,
    pub commitment: SignedText,
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
    /// The parties whose values were mixed into the seed, and those among
    /// them that withheld theirs.
    pub contributors: Vec<String>,
    pub withheld: Vec<String>,
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
    let v: T = parsed(s, what)?;
    sign::verify_hex(key, label, s.statement.as_bytes(), &s.signature)
        .map_err(|_| format!("{what}: the signature does not verify with the expert's key"))?;
    Ok(v)
}

/// Holds the keys of the centres the draw drew from to fingerprints the
/// verifier has from outside the platform — each centre's registry entry or
/// its own publication (`kaibiao centre export` prints it) — so that a
/// transcript re-signed end to end with fresh centre keys, which no check
/// inside it can tell from the real one, is rejected. Every centre of the
/// draw's request that the transcript lists must be pinned and match.
/// Returns how many centres were checked (none without an evaluation).
pub fn check_pins(
    t: &super::Transcript,
    pins: &std::collections::BTreeMap<String, String>,
) -> Result<usize, String> {
    let Some(x) = &t.evaluation else {
        return Ok(0);
    };
    let mut checked = 0;
    for code in &x.request.centres {
        let Some(c) = x
            .centres
            .iter()
            .map(|e| &e.centre)
            .find(|c| c.code == *code)
        else {
            continue;
        };
        let pin = pins.get(code).ok_or_else(|| {
            format!("centre {code} took part in the draw but no pin was given for it")
        })?;
        ensure!(
            *pin == c.fingerprint(),
            "centre {code}: its key in the transcript (fingerprint {}) is not the pinned one ({pin})",
            c.fingerprint()
        );
        checked += 1;
    }
    Ok(checked)
}

/// The transcript lists exactly the centres the draw drew from (the host's
/// included), once each, and each one's registration was logged before the
/// draw was asked for (`requested`: the request's index and leaf), so that
/// no key a centre signed with can have been chosen after the draw. Their
/// signatures and leaves are checked with the other keys
/// ([`super::keys`]). Returns the centres.
fn check_centres(
    entries: &[CentreEntry],
    request: &DrawRequest,
    requested: (u64, &Value),
) -> Result<Vec<Centre>, String> {
    super::distinct(entries, |e| e.centre.code.clone(), "centres")?;
    let mut codes: BTreeSet<&str> = request.centres.iter().map(String::as_str).collect();
    if let Some(host) = requested.1["host_centre"].as_str() {
        codes.insert(host);
    }
    for e in entries {
        let code = e.centre.code.as_str();
        ensure!(
            codes.contains(code),
            "centre {code} is listed but the draw did not draw from it"
        );
        ensure!(
            e.registered.index < requested.0,
            "centre {code}: its registration (log entry {}) was logged after the draw was asked for",
            e.registered.index
        );
    }
    for code in codes {
        ensure!(
            entries.iter().any(|e| e.centre.code == code),
            "centre {code} took part in the draw but its registration is not in the transcript"
        );
    }
    Ok(entries.iter().map(|e| e.centre.clone()).collect())
}

/// The host centre's key is logged with the draw's request, is its own (not
/// the platform's: a pass is the centre's word, a receipt the platform's),
/// and is the key the transcript lists for it. Partner centres' keys are
/// anchored by their signed commitments to the seed ([`check_seed`]).
fn check_host_centre(
    request: &Value,
    centres: &[Centre],
    platform_key: &str,
) -> Result<(), String> {
    let host = request["host_centre"].as_str().unwrap_or_default();
    let key = request["host_centre_key"]
        .as_str()
        .ok_or("the draw's request does not log the host centre's key")?;
    ensure!(
        key != platform_key,
        "the host centre's key is the platform key: its passes must be signed with the centre's own key"
    );
    ensure!(
        centres
            .iter()
            .filter(|c| c.code == host)
            .all(|c| c.public_key == key),
        "the host centre's key in the transcript is not the one logged before the draw"
    );
    Ok(())
}

/// What the transcript claims about the seed.
struct SeedClaim<'a> {
    request_centres: &'a [String],
    platform_seed: &'a str,
    seed: &'a str,
    contributions: &'a [ContributionEntry],
    centres: &'a [Centre],
}

/// What [`check_seed`] found: the seed, who contributed, who withheld.
#[derive(Debug)]
struct SeedCheck {
    seed: [u8; 32],
    contributors: Vec<String>,
    withheld: Vec<String>,
}

/// The draw's seed (PROTOCOL §14.2): every commitment in the log is in the
/// transcript, signed by its party's anchored key (the supervisor's that
/// countersigned the opening record, or the centre's), made before the draw
/// was asked for; the contributors are the supervisor and every partner
/// centre drawn from; each revealed a value matching its commitment before
/// the time ended, or is logged as withheld after it; and the seed is the
/// mix of the platform's committed seed and those values.
fn check_seed<'a>(
    section_id: &str,
    of: &dyn Fn(&str) -> Vec<(u64, &'a Value)>,
    requested: (u64, &Value),
    drawn: (u64, &Value),
    x: &SeedClaim<'_>,
    supervisor_key: Option<&str>,
) -> Result<SeedCheck, String> {
    let (req_at, req) = requested;
    let platform_seed: [u8; 32] = crate::crypto::hex_array(x.platform_seed)
        .ok_or("the platform's seed is not 32 bytes of lower-case hex")?;
    ensure!(
        req["seed_commitment"] == draw::seed_commitment(&platform_seed).as_str(),
        "the platform's seed does not match the commitment logged before the draw"
    );
    let contributors: Vec<String> = serde_json::from_value(req["contributors"].clone())
        .map_err(|e| format!("the draw's contributors: {e}"))?;
    let host = req["host_centre"]
        .as_str()
        .ok_or("the draw's request does not name the host centre")?;
    ensure!(
        contributors.first().map(String::as_str) == Some(seed::SUPERVISOR),
        "the draw's seed has no contribution from the supervisor: the platform alone could have picked it"
    );
    ensure!(
        contributors == seed::contributors(x.request_centres, host),
        "the draw's contributors are not the supervisor and every partner centre drawn from"
    );
    let due = req["reveals_due_at_ms"]
        .as_i64()
        .ok_or("the draw's request has no time to reveal")?;

    // Every commitment in the log, and only those, is in the transcript.
    super::distinct(x.contributions, |c| c.party.clone(), "contributions")?;
    let committed = of("evaluation.contribution_committed");
    ensure!(
        committed.len() == x.contributions.len(),
        "the transcript has {} commitments to the seed, the log {}",
        x.contributions.len(),
        committed.len()
    );
    let mut commitments = BTreeMap::new();
    for (at, leaf) in committed {
        let party = leaf["party"].as_str().unwrap_or_default();
        let what = format!("the commitment of {party}");
        let e = x
            .contributions
            .iter()
            .find(|c| c.party == party)
            .ok_or_else(|| format!("{what} is logged but not in the transcript"))?;
        ensure!(
            leaf["key"] == e.key.as_str(),
            "{what}: another key than the logged one"
        );
        let anchored = match seed::party_centre(party) {
            None if party == seed::SUPERVISOR => supervisor_key
                .ok_or("a supervisor's commitment but no countersigned opening record")?
                .to_string(),
            None => return Err(format!("{what}: an unknown party")),
            Some(code) => x
                .centres
                .iter()
                .find(|c| c.code == code)
                .map(|c| c.public_key.clone())
                .ok_or_else(|| format!("{what}: centre {code} is not among the trusted centres"))?,
        };
        ensure!(
            e.key == anchored,
            "{what}: not signed with the party's key (the supervisor's that countersigned the record, or the centre's)"
        );
        let st: seed::ContributionStatement = parsed(&e.commitment, &what)?;
        sign::verify_hex(
            &e.key,
            seed::CONTRIBUTION_LABEL,
            e.commitment.statement.as_bytes(),
            &e.commitment.signature,
        )
        .map_err(|_| format!("{what}: the signature does not verify"))?;
        ensure!(
            st.section_id == section_id && st.party == party,
            "{what}: another section or party"
        );
        ensure!(
            leaf["commitment"] == st.commitment.as_str()
                && leaf["statement_hash"] == sha256_hex(e.commitment.statement.as_bytes()).as_str(),
            "{what}: differs from the logged one"
        );
        ensure!(at < req_at, "{what}: made after the draw was asked for");
        commitments.insert(party.to_string(), st.commitment);
    }

    // Each contributor revealed in time or is logged as withheld after it.
    let revealed = of("evaluation.contribution_revealed");
    let withheld_leaves = of("evaluation.contribution_withheld");
    let mut values = Vec::new();
    let mut withheld = Vec::new();
    for party in &contributors {
        let what = format!("the contribution of {party}");
        let commitment = commitments
            .get(party)
            .ok_or_else(|| format!("{what}: no commitment before the draw was asked for"))?;
        let r: Vec<_> = revealed
            .iter()
            .filter(|(_, l)| l["party"] == party.as_str())
            .collect();
        let w: Vec<_> = withheld_leaves
            .iter()
            .filter(|(_, l)| l["party"] == party.as_str())
            .collect();
        match (r.as_slice(), w.as_slice()) {
            ([(at, l)], []) => {
                ensure!(
                    *at > req_at && *at < drawn.0,
                    "{what}: revealed out of order"
                );
                ensure!(
                    l["at_ms"].as_i64().is_some_and(|t| t < due),
                    "{what}: revealed after the time to reveal ended"
                );
                let v: [u8; 32] = l["value"]
                    .as_str()
                    .and_then(crate::crypto::hex_array)
                    .ok_or_else(|| {
                        format!("{what}: the value is not 32 bytes of lower-case hex")
                    })?;
                ensure!(
                    seed::value_commitment(&v) == *commitment,
                    "{what}: the revealed value does not match its commitment"
                );
                values.push(Some(v));
            }
            ([], [(at, l)]) => {
                ensure!(
                    *at > req_at && *at < drawn.0,
                    "{what}: withheld out of order"
                );
                ensure!(
                    l["at_ms"].as_i64().is_some_and(|t| t >= due),
                    "{what}: recorded as withheld before the time to reveal ended"
                );
                withheld.push(party.clone());
                values.push(None);
            }
            _ => return Err(format!("{what}: must be revealed or withheld exactly once")),
        }
    }
    let extra = revealed
        .iter()
        .chain(&withheld_leaves)
        .filter(|(_, l)| !contributors.iter().any(|p| l["party"] == p.as_str()))
        .count();
    ensure!(
        extra == 0,
        "a value revealed or withheld by a party that does not contribute"
    );
    ensure!(
        drawn.1["withheld"] == serde_json::to_value(&withheld).map_err(|e| e.to_string())?,
        "the draw names other withheld contributions than the log"
    );
    let seed = seed::mix(&platform_seed, &values);
    ensure!(
        x.seed == hex::encode(seed),
        "the seed is not the mix of the platform's seed and the contributors' values"
    );
    Ok(SeedCheck {
        seed,
        contributors,
        withheld,
    })
}

/// The leaves that move a seat, each naming it by its position in the draw
/// (members, then reserves).
const SEAT_EVENTS: [&str; 5] = [
    "evaluation.expert_confirmed",
    "evaluation.expert_declined",
    "evaluation.expert_no_answer",
    "evaluation.expert_admitted",
    "evaluation.expert_recused",
];

/// Replays the seats' logged history from the draw — members called,
/// reserves on standby — in log order: an answer only for a called seat, a
/// recusal only for a confirmed one, each decline, no-show or recusal
/// calling exactly the next reserve of the specialty still on standby (or
/// none when none is left), an admission only of a confirmed seat; and the
/// seats of the transcript must be what the replay ends with, each pass the
/// one the seat's last admission logged.
fn check_seat_history(
    draw: &DrawResult,
    seats: &[SeatEntry],
    mut history: Vec<(u64, &Value)>,
) -> Result<(), String> {
    history.sort_by_key(|(i, _)| *i);
    let drawn: Vec<&draw::Seat> = draw.members.iter().chain(&draw.reserves).collect();
    let mut status: Vec<&str> = (0..drawn.len())
        .map(|i| {
            if i < draw.members.len() {
                "called"
            } else {
                "standby"
            }
        })
        .collect();
    let mut passes: Vec<Option<&str>> = vec![None; drawn.len()];
    for (at, leaf) in history {
        let ty = leaf["type"].as_str().unwrap_or_default();
        let what = format!("seat history at leaf {at} ({ty})");
        let seat = leaf["seat"]
            .as_u64()
            .map(|p| p as usize)
            .filter(|p| *p < drawn.len())
            .ok_or_else(|| format!("{what}: no seat of the draw"))?;
        let (from, to) = match ty {
            "evaluation.expert_confirmed" => ("called", "confirmed"),
            "evaluation.expert_declined" | "evaluation.expert_no_answer" => ("called", "declined"),
            "evaluation.expert_recused" => ("confirmed", "recused"),
            _ => ("confirmed", "confirmed"),
        };
        ensure!(
            status[seat] == from,
            "{what}: seat {seat} is {}, not {from}",
            status[seat]
        );
        status[seat] = to;
        if ty == "evaluation.expert_admitted" {
            passes[seat] = leaf["pass_hash"].as_str();
        }
        if to == "declined" || to == "recused" {
            let next = (0..drawn.len())
                .find(|i| status[*i] == "standby" && drawn[*i].specialty == drawn[seat].specialty);
            ensure!(
                leaf["reserve"].as_u64().map(|p| p as usize) == next,
                "{what}: the reserve called is not the next of the specialty"
            );
            if let Some(n) = next {
                status[n] = "called";
            }
        }
    }
    ensure!(
        seats.len() == drawn.len(),
        "the transcript has {} seats, the draw {}",
        seats.len(),
        drawn.len()
    );
    for s in seats {
        let i = drawn
            .iter()
            .position(|d| d.expert_id == s.expert_id)
            .ok_or_else(|| format!("seat {}: not drawn", s.expert_id))?;
        ensure!(
            s.status == status[i],
            "seat {}: the log's history leaves it {}, the transcript says {}",
            s.expert_id,
            status[i],
            s.status
        );
        let pass = s.pass.as_ref().map(json_hash).transpose()?;
        ensure!(
            pass.as_deref() == passes[i],
            "seat {}: the pass differs from the one its admission logged",
            s.expert_id
        );
    }
    Ok(())
}

/// Every organisation that sealed a bid in the transcript — and only those —
/// is named in the parties to avoid, by its credit code.
fn check_parties(parties: &Parties, bidders: &BTreeSet<&str>) -> Result<(), String> {
    let named: BTreeSet<&str> = parties.bidder_ids.keys().map(String::as_str).collect();
    ensure!(
        named == *bidders,
        "the parties to avoid do not name every bidder of the transcript (and only them)"
    );
    let codes: BTreeSet<&str> = parties.bidder_ids.values().map(String::as_str).collect();
    let avoided: BTreeSet<&str> = parties.bidders.iter().map(String::as_str).collect();
    ensure!(
        codes == avoided,
        "the bidders' credit codes differ from the parties to avoid"
    );
    Ok(())
}

/// A signed text's statement, parsed, and in canonical form.
fn parsed<T: serde::de::DeserializeOwned + Serialize>(
    s: &SignedText,
    what: &str,
) -> Result<T, String> {
    let v: T = serde_json::from_str(&s.statement).map_err(|e| format!("{what}: {e}"))?;
    ensure!(
        jcs::to_vec(&v).map_err(|e| e.to_string())? == s.statement.as_bytes(),
        "{what}: the statement is not in canonical form"
    );
    Ok(v)
}

/// Checks the evaluation against the log and the announced record;
/// `Ok(None)` when nothing has been published yet.
pub(super) fn verify(
    section_id: &str,
    params: &SectionParams,
    log: &BTreeMap<u64, &Value>,
    bidder_keys: &std::collections::HashSet<(&str, &str, &str)>,
    bidders: &BTreeSet<&str>,
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

    // 1. The draw: the seed is the mix of the platform's committed seed and
    //    every contributor's committed value; the snapshot, parties and
    //    request match what was logged before any value was revealed, and
    //    the draw recomputes exactly.
    let of_idx = |ty: &str| -> Vec<(u64, &Value)> {
        log.iter()
            .filter(|(_, l)| l["section_id"] == section_id && l["type"] == ty)
            .map(|(i, l)| (*i, *l))
            .collect()
    };
    let requested = of_idx("evaluation.draw_requested");
    ensure!(
        requested.len() == 1,
        "the log must record exactly one request for the draw"
    );
    let requested = requested[0];
    let drawn = of_idx("evaluation.committee_drawn");
    ensure!(drawn.len() == 1, "the log must record exactly one draw");
    let drawn = drawn[0];
    ensure!(
        drawn.0 > requested.0,
        "the committee was drawn before the draw was asked for"
    );
    let countersigned = of("opening.countersigned");
    let supervisor_key = countersigned
        .first()
        .and_then(|l| l["supervisor_key"].as_str());
    let centres = check_centres(&x.centres, &x.request, requested)?;
    let claim = SeedClaim {
        request_centres: &x.request.centres,
        platform_seed: &x.platform_seed,
        seed: &x.seed,
        contributions: &x.contributions,
        centres: &centres,
    };
    let seed_check = check_seed(
        section_id,
        &of_idx,
        requested,
        drawn,
        &claim,
        supervisor_key,
    )?;
    check_host_centre(requested.1, &centres, &params.platform_key)?;
    let seed = seed_check.seed;
    ensure!(
        published["seed"] == x.seed.as_str()
            && published["platform_seed"] == x.platform_seed.as_str(),
        "the seed differs from the one revealed in the log"
    );
    let requested = requested.1;
    ensure!(
        requested["snapshot_hash"] == x.snapshot.hash().as_str(),
        "the pool snapshot differs from the one logged before the draw"
    );
    ensure!(
        requested["parties_hash"] == json_hash(&x.parties)?.as_str(),
        "the parties to avoid differ from those logged before the draw"
    );
    check_parties(&x.parties, bidders)?;
    ensure!(
        requested["request"] == serde_json::to_value(&x.request).map_err(|e| e.to_string())?,
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
    for c in &centres {
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
    let history: Vec<(u64, &Value)> = SEAT_EVENTS.iter().flat_map(|ty| of_idx(ty)).collect();
    check_seat_history(&x.draw, &x.seats, history)?;
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
        contributors: seed_check.contributors,
        withheld: seed_check.withheld,
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

#[cfg(test)]
mod tests {
    //! The seed's check on logs a test writes by hand — including ones an
    //! honest platform never writes (a draw with no contributor), which an
    //! integration test cannot produce without the platform's key.
    use super::*;
    use crate::evaluation::statements::sign_statement;
    use serde_json::json;

    const S: &str = "sec_a";

    #[derive(Clone)]
    struct Case {
        supervisor: ed25519_dalek::SigningKey,
        platform: [u8; 32],
        values: [[u8; 32]; 2],
        log: BTreeMap<u64, Value>,
        contributions: Vec<ContributionEntry>,
        centres: Vec<Centre>,
    }

    fn leaf(ty: &str, at_ms: i64, mut v: Value) -> Value {
        v["type"] = json!(ty);
        v["section_id"] = json!(S);
        v["at_ms"] = json!(at_ms);
        v
    }

    /// An honest log: the supervisor and GZ commit, the draw is asked for
    /// (due at 1000), both reveal, the committee is drawn.
    fn honest() -> Case {
        let supervisor = sign::generate();
        let centre = sign::generate();
        let platform = [9u8; 32];
        let values = [[1u8; 32], [2u8; 32]];
        let mut log = BTreeMap::new();
        let mut contributions = Vec::new();
        for (i, (party, key)) in [("supervisor", &supervisor), ("centre:GZ", &centre)]
            .into_iter()
            .enumerate()
        {
            let st = seed::ContributionStatement {
                section_id: S.into(),
                party: party.into(),
                commitment: seed::value_commitment(&values[i]),
            };
            let text = String::from_utf8(jcs::to_vec(&st).unwrap()).unwrap();
            let pk = hex::encode(key.verifying_key().as_bytes());
            log.insert(
                i as u64 + 1,
                leaf(
                    "evaluation.contribution_committed",
                    10,
                    json!({"party": party, "key": pk, "commitment": st.commitment,
                           "statement_hash": sha256_hex(text.as_bytes())}),
                ),
            );
            contributions.push(ContributionEntry {
                party: party.into(),
                key: pk,
                commitment: SignedText {
                    signature: sign_statement(key, seed::CONTRIBUTION_LABEL, &st),
                    statement: text,
                },
            });
        }
        log.insert(
            3,
            leaf(
                "evaluation.draw_requested",
                20,
                json!({"seed_commitment": draw::seed_commitment(&platform),
                       "host_centre": "HOST", "contributors": ["supervisor", "centre:GZ"],
                       "reveals_due_at_ms": 1000}),
            ),
        );
        for (i, party) in ["supervisor", "centre:GZ"].into_iter().enumerate() {
            log.insert(
                4 + i as u64,
                leaf(
                    "evaluation.contribution_revealed",
                    500,
                    json!({"party": party, "value": hex::encode(values[i])}),
                ),
            );
        }
        log.insert(
            6,
            leaf("evaluation.committee_drawn", 600, json!({"withheld": []})),
        );
        let centres = vec![Centre::signed("GZ", "GZ centre", &centre)];
        Case {
            supervisor,
            platform,
            values,
            log,
            contributions,
            centres,
        }
    }

    fn check(c: &Case, seed_hex: &str) -> Result<SeedCheck, String> {
        let of = |ty: &str| -> Vec<(u64, &Value)> {
            c.log
                .iter()
                .filter(|(_, l)| l["type"] == ty)
                .map(|(i, l)| (*i, l))
                .collect()
        };
        let requested = of("evaluation.draw_requested")[0];
        let drawn = of("evaluation.committee_drawn")[0];
        let centres = ["HOST".to_string(), "GZ".to_string()];
        let platform = hex::encode(c.platform);
        let claim = SeedClaim {
            request_centres: &centres,
            platform_seed: &platform,
            seed: seed_hex,
            contributions: &c.contributions,
            centres: &c.centres,
        };
        let key = hex::encode(c.supervisor.verifying_key().as_bytes());
        check_seed(S, &of, requested, drawn, &claim, Some(&key))
    }

    fn mixed(c: &Case, values: &[Option<[u8; 32]>]) -> String {
        hex::encode(seed::mix(&c.platform, values))
    }

    fn seat(id: &str) -> draw::Seat {
        draw::Seat {
            expert_id: id.into(),
            specialty: "civil".into(),
            centre: "GZ".into(),
            ticket: String::new(),
        }
    }

    /// Members A, B; reserves R1, R2; A confirms and is admitted, B
    /// declines (R1 called), R1 does not answer (R2 called), R2 confirms,
    /// A recuses with no reserve left.
    fn seat_case() -> (DrawResult, Vec<SeatEntry>, BTreeMap<u64, Value>) {
        let d = DrawResult {
            snapshot_hash: String::new(),
            members: vec![seat("A"), seat("B")],
            reserves: vec![seat("R1"), seat("R2")],
            skipped: Vec::new(),
        };
        let key = sign::generate();
        let p = pass::issue(
            &key,
            pass::PassBody::new("GZ", "A", &"ab".repeat(32), S, 0, 60),
        );
        let ph = json_hash(&p).unwrap();
        let mut log = BTreeMap::new();
        for (i, (ty, v)) in [
            (
                "evaluation.expert_confirmed",
                json!({"seat": 0, "reserve": null}),
            ),
            (
                "evaluation.expert_declined",
                json!({"seat": 1, "reserve": 2}),
            ),
            (
                "evaluation.expert_admitted",
                json!({"seat": 0, "pass_hash": ph}),
            ),
            (
                "evaluation.expert_no_answer",
                json!({"seat": 2, "reserve": 3}),
            ),
            (
                "evaluation.expert_confirmed",
                json!({"seat": 3, "reserve": null}),
            ),
            (
                "evaluation.expert_recused",
                json!({"seat": 0, "reserve": null}),
            ),
        ]
        .into_iter()
        .enumerate()
        {
            log.insert(10 + i as u64, leaf(ty, 0, v));
        }
        let entry = |id: &str, status: &str, pass: Option<Pass>| SeatEntry {
            expert_id: id.into(),
            specialty: "civil".into(),
            status: status.into(),
            pass,
        };
        let seats = vec![
            entry("A", "recused", Some(p)),
            entry("B", "declined", None),
            entry("R1", "declined", None),
            entry("R2", "confirmed", None),
        ];
        (d, seats, log)
    }

    fn replay(
        d: &DrawResult,
        seats: &[SeatEntry],
        log: &BTreeMap<u64, Value>,
    ) -> Result<(), String> {
        check_seat_history(d, seats, log.iter().map(|(i, l)| (*i, l)).collect())
    }

    #[test]
    fn the_seats_are_what_their_logged_history_leaves_them() {
        let (d, seats, log) = seat_case();
        replay(&d, &seats, &log).unwrap();
        // A transcript that says otherwise about any seat.
        for (i, status) in [(1, "confirmed"), (2, "standby"), (3, "declined")] {
            let mut bad = seats.clone();
            bad[i].status = status.into();
            let err = replay(&d, &bad, &log).unwrap_err();
            assert!(err.contains("the log's history leaves it"), "{err}");
        }
        // Another pass than the admitted one, or a pass never admitted.
        let mut bad = seats.clone();
        bad[3].pass = bad[0].pass.clone();
        assert!(replay(&d, &bad, &log).unwrap_err().contains("pass differs"));
        // A reserve called out of order, an answer for a seat on standby,
        // a recusal of a seat that never confirmed, a seat not drawn.
        for (at, v) in [
            (11, json!({"seat": 1, "reserve": 3})),
            (11, json!({"seat": 1, "reserve": null})),
            (13, json!({"seat": 3, "reserve": null})),
            (15, json!({"seat": 1, "reserve": null})),
            (10, json!({"seat": 9, "reserve": null})),
        ] {
            let mut bad = log.clone();
            let ty = bad[&at]["type"].clone();
            let mut l = leaf(ty.as_str().unwrap(), 0, v);
            l["type"] = ty;
            bad.insert(at, l);
            replay(&d, &seats, &bad).unwrap_err();
        }
        // A seat's history left out.
        let mut bad = log.clone();
        bad.remove(&14);
        replay(&d, &seats, &bad).unwrap_err();
    }

    #[test]
    fn the_parties_name_every_bidder_by_its_credit_code() {
        let parties = Parties {
            tenderer: "T".into(),
            bidders: vec!["C1".into(), "C2".into()],
            bidder_ids: [("org_a", "C1"), ("org_b", "C2")]
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .into(),
            bidder_people: Vec::new(),
        };
        check_parties(&parties, &["org_a", "org_b"].into()).unwrap();
        // A bidder of the transcript left out of the parties (say, the one
        // whose people an expert is related to), or one that did not bid.
        let err = check_parties(&parties, &["org_a", "org_b", "org_c"].into()).unwrap_err();
        assert!(err.contains("every bidder"), "{err}");
        check_parties(&parties, &["org_a"].into()).unwrap_err();
        // A credit code avoided that is not the bidder's.
        let mut other = parties.clone();
        other.bidder_ids.insert("org_b".into(), "C9".into());
        let err = check_parties(&other, &["org_a", "org_b"].into()).unwrap_err();
        assert!(err.contains("credit codes"), "{err}");
    }

    #[test]
    fn an_honest_seed_checks_and_names_its_contributors() {
        let c = honest();
        let seed = mixed(&c, &[Some(c.values[0]), Some(c.values[1])]);
        let r = check(&c, &seed).unwrap();
        assert_eq!(r.contributors, ["supervisor", "centre:GZ"]);
        assert!(r.withheld.is_empty());
        assert_eq!(hex::encode(r.seed), seed);
        // The platform's seed alone, or a mix without one value, is not it.
        check(&c, &hex::encode(c.platform)).unwrap_err();
        check(&c, &mixed(&c, &[Some(c.values[0]), None])).unwrap_err();
    }

    #[test]
    fn a_seed_from_the_platform_alone_is_rejected() {
        let mut c = honest();
        // A request that names no contributor, or leaves out the supervisor.
        for contributors in [json!([]), json!(["centre:GZ"])] {
            c.log.get_mut(&3).unwrap()["contributors"] = contributors;
            let err = check(&c, &hex::encode(c.platform)).unwrap_err();
            assert!(err.contains("no contribution from the supervisor"), "{err}");
        }
        // A request that leaves out a centre drawn from.
        c.log.get_mut(&3).unwrap()["contributors"] = json!(["supervisor"]);
        let err = check(&c, &mixed(&c, &[Some(c.values[0])])).unwrap_err();
        assert!(err.contains("every partner centre"), "{err}");
    }

    #[test]
    fn withholding_is_accepted_only_after_the_time_and_only_as_logged() {
        let mut c = honest();
        c.log.insert(
            5,
            leaf(
                "evaluation.contribution_withheld",
                1000,
                json!({"party": "centre:GZ"}),
            ),
        );
        c.log.get_mut(&6).unwrap()["withheld"] = json!(["centre:GZ"]);
        let seed = mixed(&c, &[Some(c.values[0]), None]);
        let r = check(&c, &seed).unwrap();
        assert_eq!(r.withheld, ["centre:GZ"]);
        // Claiming the withheld value was in.
        check(&c, &mixed(&c, &[Some(c.values[0]), Some(c.values[1])])).unwrap_err();
        // Withheld before the time ended.
        c.log.get_mut(&5).unwrap()["at_ms"] = json!(999);
        let err = check(&c, &seed).unwrap_err();
        assert!(err.contains("before the time to reveal ended"), "{err}");
        // The draw naming nobody withheld.
        c.log.get_mut(&5).unwrap()["at_ms"] = json!(1000);
        c.log.get_mut(&6).unwrap()["withheld"] = json!([]);
        check(&c, &seed).unwrap_err();
    }

    #[test]
    fn late_reveals_late_commitments_repeats_and_foreign_keys_are_rejected() {
        let base = honest();
        let seed = mixed(&base, &[Some(base.values[0]), Some(base.values[1])]);
        // Revealed at the due millisecond.
        let mut c = base.clone();
        c.log.get_mut(&5).unwrap()["at_ms"] = json!(1000);
        let err = check(&c, &seed).unwrap_err();
        assert!(err.contains("after the time to reveal ended"), "{err}");
        // A commitment after the request.
        let mut c = base.clone();
        let late = c.log.remove(&2).unwrap();
        c.log.insert(7, late);
        let err = check(&c, &seed).unwrap_err();
        assert!(err.contains("after the draw was asked for"), "{err}");
        // Revealed twice.
        let mut c = base.clone();
        let again = c.log[&4].clone();
        c.log.insert(5, again.clone());
        c.log.insert(
            7,
            leaf(
                "evaluation.contribution_revealed",
                500,
                json!({"party": "centre:GZ", "value": hex::encode(c.values[1])}),
            ),
        );
        c.log.insert(
            8,
            leaf("evaluation.committee_drawn", 600, json!({"withheld": []})),
        );
        c.log.remove(&6);
        check(&c, &seed).unwrap_err();
        // The centre's commitment under a key that is not the centre's.
        let mut c = base.clone();
        c.centres = vec![Centre::signed("GZ", "GZ centre", &c.supervisor)];
        let err = check(&c, &seed).unwrap_err();
        assert!(err.contains("not signed with the party's key"), "{err}");
    }

    #[test]
    fn the_host_centre_signs_with_its_own_logged_key() {
        let centre = crate::crypto::sign::generate();
        let key = hex::encode(centre.verifying_key().as_bytes());
        let platform = hex::encode([7u8; 32]);
        let request = json!({"host_centre": "HOST", "host_centre_key": key});
        let listed = vec![
            Centre::signed("HOST", "host", &centre),
            Centre::signed("GZ", "GZ", &crate::crypto::sign::generate()),
        ];
        check_host_centre(&request, &listed, &platform).unwrap();
        // Another key listed for the host than the logged one.
        let other = vec![Centre::signed(
            "HOST",
            "host",
            &crate::crypto::sign::generate(),
        )];
        let e = check_host_centre(&request, &other, &platform).unwrap_err();
        assert!(e.contains("not the one logged before the draw"), "{e}");
        // The platform key passing for the centre's.
        let e = check_host_centre(&request, &listed, &key).unwrap_err();
        assert!(e.contains("is the platform key"), "{e}");
        // A request that does not log it.
        let e = check_host_centre(&json!({"host_centre": "HOST"}), &listed, &platform).unwrap_err();
        assert!(e.contains("does not log the host centre's key"), "{e}");
    }

    #[test]
    fn the_centres_listed_are_the_draws_each_registered_before_it() {
        let entry = |code: &str, index: u64| CentreEntry {
            centre: Centre::signed(code, code, &crate::crypto::sign::generate()),
            registered: super::super::LogEntry {
                index,
                leaf: json!({"type": "centre.registered"}),
                proof: vec![],
            },
        };
        let request = DrawRequest {
            requirements: vec![],
            centres: vec!["HOST".into(), "GZ".into()],
            tenderer_representatives: 0,
        };
        let logged = json!({"host_centre": "HOST"});
        let requested = (10, &logged);
        let both = vec![entry("GZ", 3), entry("HOST", 4)];
        let listed = check_centres(&both, &request, requested).unwrap();
        assert_eq!(listed.len(), 2);
        // Registered at the request's own index or after it.
        let late = vec![entry("GZ", 3), entry("HOST", 10)];
        let e = check_centres(&late, &request, requested).unwrap_err();
        assert!(
            e.contains("centre HOST: its registration (log entry 10) was logged after"),
            "{e}"
        );
        // One left out, one listed twice, one the draw did not draw from.
        let e = check_centres(&both[..1], &request, requested).unwrap_err();
        assert!(
            e.contains("centre HOST took part in the draw but its registration is not"),
            "{e}"
        );
        let twice = vec![entry("GZ", 3), entry("GZ", 3), entry("HOST", 4)];
        check_centres(&twice, &request, requested).unwrap_err();
        let stranger = vec![entry("GZ", 3), entry("HOST", 4), entry("SZ", 5)];
        let e = check_centres(&stranger, &request, requested).unwrap_err();
        assert!(
            e.contains("centre SZ is listed but the draw did not draw from it"),
            "{e}"
        );
        // The host, named by the logged request, need not be in the
        // request's list of centres to be required.
        let remote_only = DrawRequest {
            centres: vec!["GZ".into()],
            ..request.clone()
        };
        let e = check_centres(&both[..1], &remote_only, requested).unwrap_err();
        assert!(e.contains("centre HOST took part"), "{e}");
    }
}
