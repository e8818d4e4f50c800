//! The room's state as a fold of the section's events (DESIGN §5), and the
//! role-filtered views of it and of each event.
//!
//! Confidentiality is by construction first: nothing that the law keeps
//! secret at a given moment is in any event before that moment (no bidder
//! before the deadline, no price before the announcement). On top of that,
//! staff-only details — who among the staff did what, custodian identities,
//! internal events — sit under `"staff"` keys or in staff-only event kinds,
//! and [`View::Public`] strips them.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::ToSchema;

use crate::crypto::opening::OpeningRecord;
use crate::domain::section::SummaryField;
use crate::domain::states::{DecryptedVia, Fault, OpeningStatus};

/// The two encodings of the room. Everyone who is not staff of the section
/// (the public, bidders, custodians, experts) gets the public view plus a
/// personal `me` block; the section's host, tenderer and supervisor (and
/// platform admins) get the staff view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum View {
    Public,
    Staff,
}

impl View {
    pub fn as_str(self) -> &'static str {
        match self {
            View::Public => "public",
            View::Staff => "staff",
        }
    }
}

/// Event kinds everyone may see; every other kind is staff-only.
const PUBLIC_KINDS: &[&str] = &[
    "section.published",
    "section.amended",
    "section.cancelled",
    "section.sealed",
    "section.manifest",
    "section.failed",
    "opening.signin_opened",
    "opening.signins",
    "opening.signed_in",
    "opening.started",
    "opening.key_released",
    "opening.bid_settled",
    "opening.window_extended",
    "opening.incident",
    "opening.incident_countersigned",
    "opening.resumed",
    "opening.window_closed",
    "opening.announced",
    "opening.confirming",
    "opening.objection",
    "opening.answered",
    "opening.confirmed",
    "opening.closed",
    "opening.countersigned",
    "room.notice",
    // The evaluation is confidential until the result is published.
    "evaluation.published",
    "evaluation.objection",
    "evaluation.objection_answered",
    "evaluation.awarded",
];

/// Removes every `"staff"` member, at any depth.
pub fn strip_staff(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.remove("staff");
            m.values_mut().for_each(strip_staff);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_staff),
        _ => {}
    }
}

/// An event's payload as `view` may see it; `None` if it may not see it.
pub fn project_event(kind: &str, payload: &Value, view: View) -> Option<Value> {
    match view {
        View::Staff => Some(payload.clone()),
        View::Public if PUBLIC_KINDS.contains(&kind) => {
            let mut v = payload.clone();
            strip_staff(&mut v);
            Some(v)
        }
        View::Public => None,
    }
}

/// The section facts the room shows, from its published parameters.
#[derive(Debug, Clone, Serialize, Deserialize, Default, ToSchema)]
pub struct SectionInfo {
    pub id: String,
    pub code: String,
    pub name: String,
    pub project_name: String,
    pub category: String,
    pub deadline_ms: i64,
    pub decryption_mode: String,
    pub window_ms: i64,
    pub threshold: i32,
    pub custodians: usize,
    pub min_bidders: i32,
    pub summary_fields: Vec<SummaryField>,
}

/// The decryption window and its clock.
#[derive(Debug, Clone, Serialize, Deserialize, Default, ToSchema)]
pub struct Window {
    pub started_at_ms: i64,
    pub ends_at_ms: i64,
    pub paused_since_ms: Option<i64>,
    pub closed_at_ms: Option<i64>,
}

/// One bid on the decryption board.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BoardBid {
    pub envelope_hash: String,
    pub bidder: String,
    pub name: String,
    /// `pending`, `decrypted`, `revoked` (撤销, the bidder's fault) or
    /// `withdrawn` (撤回, the platform's fault).
    pub status: OpeningStatus,
    pub fault: Option<Fault>,
    pub reason: Option<String>,
    pub via: Option<DecryptedVia>,
    pub at_ms: Option<i64>,
}

/// The sealed section's manifest, as the room shows it.
#[derive(Debug, Clone, Serialize, Deserialize, Default, ToSchema)]
#[serde(default)]
pub struct RoomManifest {
    pub root: String,
    pub count: u64,
    pub envelope_hashes: Vec<String>,
}

/// A bidder who signed in (签到), shown from the sealing on.
#[derive(Debug, Clone, Serialize, Deserialize, Default, ToSchema)]
#[serde(default)]
pub struct Signin {
    pub bidder: String,
    pub name: String,
    pub at_ms: i64,
}

/// Which custodian did something: staff only.
#[derive(Debug, Clone, Serialize, Deserialize, Default, ToSchema)]
#[serde(default)]
pub struct CustodianStaff {
    pub custodian: String,
}

/// A custodian's key released in the window.
#[derive(Debug, Clone, Serialize, Deserialize, Default, ToSchema)]
#[serde(default)]
pub struct Release {
    pub position: i32,
    /// Keys in so far, of the threshold.
    pub released: usize,
    pub threshold: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub staff: Option<CustodianStaff>,
}

/// Who declared an incident: staff only.
#[derive(Debug, Clone, Serialize, Deserialize, Default, ToSchema)]
#[serde(default)]
pub struct IncidentStaff {
    pub declared_by: String,
}

/// A platform incident declared during the window.
#[derive(Debug, Clone, Serialize, Deserialize, Default, ToSchema)]
#[serde(default)]
pub struct Incident {
    pub id: String,
    pub reason: String,
    /// The bidders it affects; empty = all.
    #[serde(default)]
    pub bidders: Vec<String>,
    #[serde(default)]
    pub paused_since_ms: Option<i64>,
    pub declared_at_ms: i64,
    /// Upheld by the supervisor.
    pub countersigned: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub staff: Option<IncidentStaff>,
}

/// An objection (异议) to the record and the host's answer.
#[derive(Debug, Clone, Serialize, Deserialize, Default, ToSchema)]
#[serde(default)]
pub struct Objection {
    pub id: String,
    pub bidder: String,
    pub name: String,
    pub text: String,
    pub at_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answered_at_ms: Option<i64>,
}

/// A bidder's confirmation of the record.
#[derive(Debug, Clone, Serialize, Deserialize, Default, ToSchema)]
#[serde(default)]
pub struct RoomConfirmation {
    pub bidder: String,
    pub name: String,
    pub at_ms: i64,
}

/// The closed record's hash.
#[derive(Debug, Clone, Serialize, Deserialize, Default, ToSchema)]
#[serde(default)]
pub struct ClosingInfo {
    pub closing_hash: String,
    pub closed_at_ms: i64,
}

/// Why the section failed (流标).
#[derive(Debug, Clone, Serialize, Deserialize, Default, ToSchema)]
#[serde(default)]
pub struct Failure {
    /// `too_few_bids` (at the sealing) or `too_few_valid_bids` (at the
    /// announcement).
    pub reason: String,
    pub bids: i64,
    pub min_bidders: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<OpeningRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record_hash: Option<String>,
}

/// A host's notice.
#[derive(Debug, Clone, Serialize, Deserialize, Default, ToSchema)]
#[serde(default)]
pub struct Notice {
    pub text: String,
    pub at_ms: i64,
}

/// The room's state: a fold of the section's events.
#[derive(Debug, Clone, Serialize, Deserialize, Default, ToSchema)]
pub struct RoomState {
    pub seq: i64,
    pub section: SectionInfo,
    /// The section's lifecycle state (DESIGN §2), as of `seq`.
    pub phase: String,
    pub signin_open: bool,
    pub manifest: Option<RoomManifest>,
    pub window: Option<Window>,
    pub bids: Vec<BoardBid>,
    pub signins: Vec<Signin>,
    pub releases: Vec<Release>,
    pub incidents: Vec<Incident>,
    pub record: Option<OpeningRecord>,
    pub record_hash: Option<String>,
    pub objections: Vec<Objection>,
    pub confirmations: Vec<RoomConfirmation>,
    pub closing: Option<ClosingInfo>,
    pub countersigned_at_ms: Option<i64>,
    pub failure: Option<Failure>,
    /// The latest notices (at most 50).
    #[schema(value_type = Vec<Notice>)]
    pub notices: VecDeque<Notice>,
}

/// An event's data as `T`, or `T::default()` when it does not fit (events
/// are this program's own; a misfit is logged, not fatal to the room).
fn data<T: serde::de::DeserializeOwned + Default>(kind: &str, d: &Value) -> T {
    serde_json::from_value(d.clone()).unwrap_or_else(|e| {
        tracing::warn!(kind, error = %e, "an event's data does not fit the room");
        T::default()
    })
}

const MAX_NOTICES: usize = 50;

impl RoomState {
    pub fn new(section: SectionInfo, phase: &str) -> Self {
        RoomState {
            section,
            phase: phase.into(),
            ..Default::default()
        }
    }

    /// Applies one event (in sequence order).
    pub fn apply(&mut self, seq: i64, kind: &str, d: &Value, at: i64) {
        self.seq = seq;
        let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
        match kind {
            "section.published" => {
                self.phase = "published".into();
                if let Some(t) = d["deadline_ms"].as_i64() {
                    self.section.deadline_ms = t;
                }
            }
            "section.amended" => {
                if let Some(t) = d["new_deadline_ms"].as_i64() {
                    self.section.deadline_ms = t;
                }
            }
            "section.cancelled" => self.phase = "cancelled".into(),
            "section.sealed" => self.phase = "sealed".into(),
            "section.manifest" => self.manifest = Some(data(kind, d)),
            "section.failed" => {
                self.phase = "failed".into();
                let f: Failure = data(kind, d);
                if f.record.is_some() {
                    self.record = f.record.clone();
                    self.record_hash = f.record_hash.clone();
                }
                self.failure = Some(f);
            }
            "opening.signin_opened" => self.signin_open = true,
            "opening.signins" => {
                #[derive(serde::Deserialize, Default)]
                struct Signins {
                    bidders: Vec<Signin>,
                }
                self.signins.extend(data::<Signins>(kind, d).bidders);
            }
            "opening.signed_in" => self.signins.push(data(kind, d)),
            "opening.started" => {
                self.phase = "decrypting".into();
                self.window = Some(Window {
                    started_at_ms: d["window_started_at_ms"].as_i64().unwrap_or(at),
                    ends_at_ms: d["window_ends_at_ms"].as_i64().unwrap_or(at),
                    paused_since_ms: None,
                    closed_at_ms: None,
                });
                self.bids = d["bids"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|b| BoardBid {
                        envelope_hash: s(&b["envelope_hash"]),
                        bidder: s(&b["bidder"]),
                        name: s(&b["name"]),
                        status: OpeningStatus::Pending,
                        fault: None,
                        reason: None,
                        via: None,
                        at_ms: None,
                    })
                    .collect();
            }
            "opening.key_released" => self.releases.push(data(kind, d)),
            "opening.bid_settled" => {
                let h = s(&d["envelope_hash"]);
                if let Some(b) = self.bids.iter_mut().find(|b| b.envelope_hash == h) {
                    fn parse<T: serde::de::DeserializeOwned>(v: &Value) -> Option<T> {
                        serde_json::from_value(v.clone()).ok()
                    }
                    b.status = parse(&d["status"]).unwrap_or(OpeningStatus::Pending);
                    b.fault = parse(&d["fault"]);
                    b.reason = d["reason"].as_str().map(str::to_string);
                    b.via = parse(&d["via"]);
                    b.at_ms = d["at_ms"].as_i64();
                }
            }
            "opening.window_extended" => {
                if let (Some(w), Some(t)) = (&mut self.window, d["window_ends_at_ms"].as_i64()) {
                    w.ends_at_ms = t;
                }
            }
            "opening.incident" => {
                if let Some(w) = &mut self.window {
                    w.paused_since_ms = d["paused_since_ms"].as_i64().or(Some(at));
                }
                let mut i = d.clone();
                i["countersigned"] = json!(false);
                i["declared_at_ms"] = json!(at);
                self.incidents.push(data(kind, &i));
            }
            "opening.incident_countersigned" => {
                let id = s(&d["id"]);
                if let Some(i) = self.incidents.iter_mut().find(|i| i.id == id) {
                    i.countersigned = true;
                }
            }
            "opening.resumed" => {
                if let Some(w) = &mut self.window {
                    w.paused_since_ms = None;
                    if let Some(t) = d["window_ends_at_ms"].as_i64() {
                        w.ends_at_ms = t;
                    }
                }
            }
            "opening.window_closed" => {
                if let Some(w) = &mut self.window {
                    w.closed_at_ms = Some(at);
                }
            }
            "opening.announced" => {
                self.phase = "announced".into();
                self.record = serde_json::from_value(d["record"].clone()).ok();
                self.record_hash = d["record_hash"].as_str().map(str::to_string);
            }
            "opening.confirming" => self.phase = "confirming".into(),
            "opening.objection" => self.objections.push(data(kind, d)),
            "opening.answered" => {
                let id = s(&d["id"]);
                if let Some(o) = self.objections.iter_mut().find(|o| o.id == id) {
                    o.answer = d["answer"].as_str().map(str::to_string);
                    o.answered_at_ms = d["at_ms"].as_i64();
                }
            }
            "opening.confirmed" => self.confirmations.push(data(kind, d)),
            "opening.closed" => self.closing = Some(data(kind, d)),
            "opening.countersigned" => {
                self.phase = "evaluating".into();
                self.countersigned_at_ms = Some(at);
            }
            "evaluation.published" => self.phase = "publicity".into(),
            "evaluation.awarded" => self.phase = "awarded".into(),
            "room.notice" => {
                self.notices.push_back(data(kind, d));
                while self.notices.len() > MAX_NOTICES {
                    self.notices.pop_front();
                }
            }
            _ => {}
        }
    }

    /// The state as `view` may see it.
    pub fn view(&self, view: View) -> Value {
        let mut v = serde_json::to_value(self).expect("room state serialises");
        if view == View::Public {
            strip_staff(&mut v);
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn started() -> RoomState {
        let mut r = RoomState::new(SectionInfo::default(), "sealed");
        r.apply(
            1,
            "opening.started",
            &json!({"window_started_at_ms": 10, "window_ends_at_ms": 100,
                    "bids": [{"envelope_hash": "aa", "bidder": "org_1", "name": "A"}]}),
            10,
        );
        r
    }

    #[test]
    fn the_fold_follows_the_opening() {
        let mut r = started();
        assert_eq!(r.phase, "decrypting");
        r.apply(
            2,
            "opening.key_released",
            &json!({"position": 1, "staff": {"custodian": "usr_9"}}),
            11,
        );
        r.apply(
            3,
            "opening.bid_settled",
            &json!({"envelope_hash": "aa", "status": "decrypted", "via": "custodians", "at_ms": 12}),
            12,
        );
        assert_eq!(r.bids[0].status, OpeningStatus::Decrypted);
        r.apply(
            4,
            "opening.incident",
            &json!({"id": "inc_1", "reason": "x"}),
            13,
        );
        assert_eq!(r.window.as_ref().unwrap().paused_since_ms, Some(13));
        r.apply(5, "opening.resumed", &json!({"window_ends_at_ms": 150}), 14);
        let w = r.window.as_ref().unwrap();
        assert_eq!((w.paused_since_ms, w.ends_at_ms), (None, 150));
        r.apply(
            6,
            "opening.announced",
            &json!({"record": null, "record_hash": "h"}),
            15,
        );
        r.apply(7, "opening.confirming", &json!({}), 15);
        assert_eq!((r.phase.as_str(), r.seq), ("confirming", 7));
        assert_eq!(r.record_hash.as_deref(), Some("h"));
    }

    #[test]
    fn the_public_view_holds_no_staff_detail() {
        let mut r = started();
        r.apply(
            2,
            "opening.key_released",
            &json!({"position": 1, "staff": {"custodian": "usr_9"}}),
            11,
        );
        assert!(r.view(View::Staff).to_string().contains("usr_9"));
        assert!(!r.view(View::Public).to_string().contains("usr_9"));
        let p = project_event(
            "opening.key_released",
            &json!({"staff": {"custodian": "usr_9"}}),
            View::Public,
        )
        .unwrap();
        assert!(!p.to_string().contains("usr_9"));
        assert!(project_event("section.created", &json!({}), View::Public).is_none());
        assert!(project_event("section.created", &json!({}), View::Staff).is_some());
    }

    #[test]
    fn the_evaluation_stays_out_of_the_public_view_until_published() {
        let mut r = started();
        for kind in [
            "evaluation.committee_drawn",
            "evaluation.expert_confirmed",
            "evaluation.scores_recorded",
            "evaluation.outlier_flagged",
            "evaluation.report",
        ] {
            assert!(
                project_event(kind, &json!({}), View::Public).is_none(),
                "{kind}"
            );
            assert!(
                project_event(kind, &json!({}), View::Staff).is_some(),
                "{kind}"
            );
        }
        assert!(project_event("evaluation.published", &json!({}), View::Public).is_some());
        r.apply(9, "evaluation.published", &json!({}), 20);
        assert_eq!(r.phase, "publicity");
        r.apply(10, "evaluation.awarded", &json!({}), 30);
        assert_eq!(r.phase, "awarded");
    }
}
