//! The plumbing every use case that changes something shares:
//!
//! - [`Tx`]: one write transaction with what an action needs in it — the
//!   services, the connection, the instant, and who acts;
//! - [`Change`]: one recorded state change — the section's room event, the
//!   transparency-log leaf when the record needs one, the audit record —
//!   written into the caller's transaction, so the room, the log and the
//!   tables can never disagree;
//! - [`Action`]: runs a change once per `Idempotency-Key`: a repeat of the
//!   same request gets the first answer and changes nothing; the same key
//!   with another request is refused (`idempotency_key_reused`, 422), as
//!   payment APIs do.

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};

use super::{translog, Actor, Services};
use crate::db::audit::{self, Who};
use crate::db::idempotency::{self, IdempotencyRow};
use crate::db::{events, DbConn};
use crate::domain::ids::SectionId;
use crate::error::{AppError, AppResult, ErrorCode};

/// One write transaction of a use case.
pub struct Tx<'a> {
    pub svc: &'a Services,
    pub c: &'a mut DbConn,
    /// Platform time of the action, in UTC milliseconds.
    pub now: i64,
    /// Who the recorded changes are attributed to.
    pub who: Who,
}

impl<'a> Tx<'a> {
    pub fn new(svc: &'a Services, c: &'a mut DbConn, now: i64, who: Who) -> Self {
        Tx { svc, c, now, who }
    }

    /// A transaction of the platform itself (the chronograph, the sealing).
    pub fn system(svc: &'a Services, c: &'a mut DbConn, now: i64) -> Self {
        Tx::new(svc, c, now, Who::system())
    }

    /// Writes `change` into this transaction; returns its event's sequence.
    pub fn record(&mut self, change: Change) -> AppResult<i64> {
        change.write(self.svc, self.c, &self.who, self.now)
    }
}

/// One recorded change of a section: its room event (always), its leaf in
/// the transparency log (when the record needs it) and its audit record.
#[must_use = "a change is written only by Tx::record"]
pub struct Change {
    section: SectionId,
    kind: &'static str,
    data: Value,
    leaf: Option<Value>,
    who: Option<Who>,
    audit: Option<(&'static str, Value)>,
}

impl Change {
    /// An event of `kind` for `section`, with no data yet.
    pub fn new(section: &SectionId, kind: &'static str) -> Self {
        Change {
            section: section.clone(),
            kind,
            data: json!({}),
            leaf: None,
            who: None,
            audit: None,
        }
    }

    /// The room event's data (what watchers see, per their view).
    pub fn data(mut self, data: Value) -> Self {
        self.data = data;
        self
    }

    /// Also a leaf in the transparency log; `type`, `section_id` and `at_ms`
    /// are added to it.
    pub fn logged(mut self, leaf: Value) -> Self {
        self.leaf = Some(leaf);
        self
    }

    /// Attributed to someone else than the transaction's actor (experts
    /// hold no account: their signed statement is the record).
    pub fn by(mut self, who: Who) -> Self {
        self.who = Some(who);
        self
    }

    /// The audit record's action and detail, when they are not the event's
    /// kind and sequence number.
    pub fn audited_as(mut self, action: &'static str, detail: Value) -> Self {
        self.audit = Some((action, detail));
        self
    }

    fn write(self, svc: &Services, c: &mut DbConn, who: &Who, now: i64) -> AppResult<i64> {
        let who = self.who.as_ref().unwrap_or(who);
        let section = &self.section;
        if let Some(mut leaf) = self.leaf {
            leaf["type"] = json!(self.kind);
            leaf["section_id"] = json!(section);
            leaf["at_ms"] = json!(now);
            translog::append(
                svc,
                c,
                &leaf,
                self.kind,
                translog::Scope::Section(section),
                now,
            )?;
        }
        let seq = events::append(
            c,
            section,
            self.kind,
            &self.data,
            who.actor_id.as_deref(),
            now,
        )?;
        let (action, detail) = self
            .audit
            .unwrap_or_else(|| (self.kind, json!({ "seq": seq })));
        audit::record(c, now, who, action, section.as_str(), &detail)?;
        Ok(seq)
    }
}

/// Runs `f` in one write transaction attributed to `who`, then kicks the
/// workers (jobs or mail it may have scheduled): a change that takes no
/// idempotency key.
pub async fn transact<T, F>(svc: &Services, who: Who, f: F) -> AppResult<T>
where
    T: Send + 'static,
    F: FnOnce(&mut Tx<'_>) -> AppResult<T> + Send + 'static,
{
    let now = svc.now().millis();
    let s = svc.clone();
    let v = svc
        .db
        .write(move |c| f(&mut Tx::new(&s, c, now, who)))
        .await?;
    svc.kick_workers();
    Ok(v)
}

// -------------------------------------------------------------- idempotency

/// A client's `Idempotency-Key`, checked for shape (8–128 characters of
/// `A–Z a–z 0–9 - _ . :`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn parse(key: &str) -> AppResult<Self> {
        if (8..=128).contains(&key.len())
            && key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
        {
            Ok(IdempotencyKey(key.to_string()))
        } else {
            Err(AppError::bad_request(
                "Idempotency-Key must be 8 to 128 characters of A–Z, a–z, 0–9, '-', '_', '.', ':'",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What identifies a call for a replay: the key, the action and its target,
/// and the hash of the request as the action read it.
struct Replay {
    key: String,
    route: String,
    request_hash: String,
}

/// One action a user takes: its name and target (for the idempotency key's
/// binding) and the request it carries.
pub struct Action {
    route: String,
    request_hash: String,
    key: Option<IdempotencyKey>,
}

impl Action {
    /// `name` says what is done (`"extend"`), `target` to what (a section,
    /// an objection…): a key can never replay another action's answer.
    pub fn new(name: &str, target: impl std::fmt::Display) -> Self {
        let route = format!("{name} {target}");
        let request_hash = crate::crypto::sha256_hex(route.as_bytes());
        Action {
            route,
            request_hash,
            key: None,
        }
    }

    /// The request the action carries: a repeat of the key must carry the
    /// same (compared as the parsed request, so spacing does not matter).
    pub fn with_request(mut self, request: &impl Serialize) -> Self {
        let body = serde_json::to_vec(request).unwrap_or_default();
        let mut h = openssl::sha::Sha256::new();
        h.update(self.route.as_bytes());
        h.update(&[0]);
        h.update(&body);
        self.request_hash = hex::encode(h.finish());
        self
    }

    pub fn idempotent(mut self, key: Option<IdempotencyKey>) -> Self {
        self.key = key;
        self
    }

    /// Runs `f` in its own write transaction, once per idempotency key, as
    /// `actor`; kicks the workers afterwards (jobs or mail it may have
    /// scheduled).
    pub async fn run<T, F>(self, svc: &Services, actor: &Actor, f: F) -> AppResult<T>
    where
        T: Serialize + DeserializeOwned + Send + 'static,
        F: FnOnce(&mut Tx<'_>, &Actor) -> AppResult<T> + Send + 'static,
    {
        let now = svc.now().millis();
        let (s, a) = (svc.clone(), actor.clone());
        let replay = self.key.map(|k| Replay {
            key: k.0,
            route: self.route,
            request_hash: self.request_hash,
        });
        let v = svc
            .db
            .write(move |c| {
                once(c, &a, replay.as_ref(), now, |c| {
                    let mut tx = Tx::new(&s, c, now, a.who());
                    f(&mut tx, &a)
                })
            })
            .await?;
        svc.kick_workers();
        Ok(v)
    }
}

fn key_reused() -> AppError {
    AppError::new(
        ErrorCode::IdempotencyKeyReused,
        "this Idempotency-Key was used for another request; use a new key for a new request",
    )
}

/// Runs a change once per idempotency key.
fn once<T: Serialize + DeserializeOwned>(
    c: &mut DbConn,
    actor: &Actor,
    replay: Option<&Replay>,
    now: i64,
    f: impl FnOnce(&mut DbConn) -> AppResult<T>,
) -> AppResult<T> {
    let user = &actor.user.id;
    if let Some(r) = replay {
        if let Some(prev) = idempotency::find(c, user, &r.key)? {
            if prev.route != r.route || prev.request_hash != r.request_hash {
                return Err(key_reused());
            }
            return serde_json::from_str(&prev.body).map_err(AppError::internal);
        }
    }
    let v = f(c)?;
    if let Some(r) = replay {
        idempotency::remember(
            c,
            &IdempotencyRow {
                user_id: user.clone(),
                key: r.key.clone(),
                route: r.route.clone(),
                status: 200,
                body: serde_json::to_string(&v).map_err(AppError::internal)?,
                created_at: now,
                request_hash: r.request_hash.clone(),
            },
        )
        .map_err(|e| {
            if crate::db::is_unique_violation(&e) {
                AppError::new(
                    ErrorCode::Conflict,
                    "a request with this Idempotency-Key is in progress",
                )
            } else {
                e.into()
            }
        })?;
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_checked_for_shape() {
        assert!(IdempotencyKey::parse("notice-key-1").is_ok());
        assert!(IdempotencyKey::parse("short").is_err());
        assert!(IdempotencyKey::parse("bad key with spaces").is_err());
        assert!(IdempotencyKey::parse(&"k".repeat(129)).is_err());
    }

    #[test]
    fn the_request_and_its_target_change_the_fingerprint() {
        let a = Action::new("notice", "sec_1").with_request(&json!({"text": "a"}));
        let b = Action::new("notice", "sec_1").with_request(&json!({"text": "b"}));
        let c = Action::new("notice", "sec_2").with_request(&json!({"text": "a"}));
        let a2 = Action::new("notice", "sec_1").with_request(&json!({"text": "a"}));
        assert_ne!(a.request_hash, b.request_hash);
        assert_ne!(a.request_hash, c.request_hash);
        assert_eq!(a.request_hash, a2.request_hash);
    }
}
