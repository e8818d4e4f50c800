//! The keys a transcript carries (PROTOCOL §2, §10, §14.1): each bidder's
//! and staff member's registered key with its registration statement, its
//! proof of possession and its registration and retirement leaves; each
//! trading centre's registration, signed by the centre, with its leaf; and
//! the rules `verify` holds every signature to — a key in force where it
//! was used.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{included, LogEntry};
use crate::crypto::merkle::Hash;
use crate::crypto::sha256_hex;
use crate::crypto::translog::SignedCheckpoint;
use crate::evaluation::pass::Centre;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BidderKey {
    pub bidder: String,
    pub purpose: String,
    pub public_key: String,
    /// When the platform took it, and when a newer key of the purpose
    /// retired it.
    pub registered_at_ms: i64,
    pub retired_at_ms: Option<i64>,
    /// The registration statement (canonical JSON text, PROTOCOL §2) and the
    /// proof of possession over it; for an Ed25519 key anyone can check it,
    /// for an X25519 key it is an HMAC only the platform can (designated
    /// verifier).
    pub statement: String,
    pub proof: String,
    /// Its `key.registered` leaf, and its `key.retired` leaf once retired,
    /// each with its inclusion proof under the transcript's checkpoint.
    pub registered: LogEntry,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retired: Option<LogEntry>,
}

/// A staff member's registered identity key (`custodian_identity` or
/// `supervisor_identity`), as [`BidderKey`] is a bidder's.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaffKey {
    pub user: String,
    pub purpose: String,
    pub public_key: String,
    pub registered_at_ms: i64,
    pub retired_at_ms: Option<i64>,
    pub statement: String,
    pub proof: String,
    pub registered: LogEntry,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retired: Option<LogEntry>,
}

/// A trading centre's registration (PROTOCOL §14.1): the file the centre
/// signed, and its `centre.registered` leaf with its inclusion proof.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CentreEntry {
    pub centre: Centre,
    pub registered: LogEntry,
}

/// A key registration, whoever holds the key.
struct Registration<'a> {
    what: String,
    owner: &'a str,
    purpose: &'a str,
    public_key: &'a str,
    registered_at_ms: i64,
    retired_at_ms: Option<i64>,
    statement: &'a str,
    proof: &'a str,
    registered: &'a LogEntry,
    retired: Option<&'a LogEntry>,
}

/// `registration()` for a key entry whose owner is in field `$owner`.
macro_rules! registration {
    ($ty:ty, $owner:ident, $kind:literal) => {
        impl $ty {
            fn registration(&self) -> Registration<'_> {
                Registration {
                    what: format!(
                        concat!($kind, " key {} of {}"),
                        self.public_key, self.$owner
                    ),
                    owner: &self.$owner,
                    purpose: &self.purpose,
                    public_key: &self.public_key,
                    registered_at_ms: self.registered_at_ms,
                    retired_at_ms: self.retired_at_ms,
                    statement: &self.statement,
                    proof: &self.proof,
                    registered: &self.registered,
                    retired: self.retired.as_ref(),
                }
            }
        }
    };
}
registration!(BidderKey, bidder, "bidder");
registration!(StaffKey, user, "staff");

impl StaffKey {
    /// Whether it was `user`'s registered key of `purpose` when the leaf
    /// `used` (its index and time) was logged: registered at or before it,
    /// its registration leaf earlier in the log, and not retired by then.
    fn in_force(&self, user: &str, purpose: &str, key: &str, used: (u64, i64)) -> bool {
        let (index, at_ms) = used;
        self.user == user
            && self.purpose == purpose
            && self.public_key == key
            && self.registered_at_ms <= at_ms
            && self.registered.index < index
            && self.retired_at_ms.is_none_or(|r| r > at_ms)
    }
}

/// Whether `key` was `user`'s registered staff key of `purpose` when the
/// leaf `used` (index, time) was logged.
pub(crate) fn staff_key_in_force(
    staff: &[StaffKey],
    user: &str,
    purpose: &str,
    key: &str,
    used: (u64, i64),
) -> bool {
    staff.iter().any(|k| k.in_force(user, purpose, key, used))
}

/// A key's registration statement names it, its owner and its purpose, in
/// canonical form; an Ed25519 key's proof of possession verifies under
/// `kaibiao/key-proof/v1`. (An X25519 proof is an HMAC keyed by a secret
/// shared with the platform: only the platform can check it.) Its
/// registration — and its retirement, if it was retired — is a leaf of the
/// signed log (PROTOCOL §2.1) naming the statement's hash at that time.
fn check_key(k: Registration<'_>, cp: &SignedCheckpoint, root: &Hash) -> Result<(), String> {
    let what = &k.what;
    let statement_hash = sha256_hex(k.statement.as_bytes());
    let logged = |e: &LogEntry, ty: &str, at: i64| -> Result<(), String> {
        statement_leaf(e, ty, &statement_hash, at, cp, root).map_err(|why| format!("{what}: {why}"))
    };
    let st: Value =
        serde_json::from_str(k.statement).map_err(|e| format!("{what}: statement: {e}"))?;
    ensure!(
        crate::crypto::jcs::canonicalize(&st).map_err(|e| e.to_string())? == k.statement.as_bytes(),
        "{what}: the statement is not in canonical form"
    );
    ensure!(
        st["owner"] == k.owner
            && st["public_key"] == k.public_key
            && st["purpose"] == k.purpose
            && st.as_object().is_some_and(|o| o.len() == 5)
            && st["challenge"].is_string()
            && st["challenge_id"].is_string(),
        "{what}: the registration statement names another key, owner or purpose"
    );
    if let Some(r) = k.retired_at_ms {
        ensure!(
            r >= k.registered_at_ms,
            "{what}: retired before it was registered"
        );
    }
    // Every key but the X25519 encryption key is Ed25519, its proof a
    // signature anyone can check.
    if k.purpose != "bidder_encryption" {
        crate::crypto::sign::verify_hex(
            k.public_key,
            crate::crypto::sign::domain::KEY_PROOF,
            k.statement.as_bytes(),
            k.proof,
        )
        .map_err(|_| format!("{what}: the proof of possession does not verify"))?;
    }
    logged(k.registered, "key.registered", k.registered_at_ms)?;
    match (k.retired, k.retired_at_ms) {
        (Some(e), Some(at)) => logged(e, "key.retired", at)?,
        (None, None) => {}
        (None, Some(_)) => {
            return Err(format!(
                "{what}: retired, but its retirement leaf is missing"
            ))
        }
        (Some(_), None) => return Err(format!("{what}: a retirement leaf for a key in force")),
    }
    Ok(())
}

/// That `e` is in the signed log and is the leaf
/// `{"type": ty, "statement_hash", "at_ms": at, "chain"}` (PROTOCOL §2.1).
fn statement_leaf(
    e: &LogEntry,
    ty: &str,
    statement_hash: &str,
    at: i64,
    cp: &SignedCheckpoint,
    root: &Hash,
) -> Result<(), String> {
    included(e, cp, root)?;
    let fields = e.leaf.as_object().map_or(0, |o| o.len());
    ensure!(
        e.leaf["type"] == ty
            && e.leaf["statement_hash"] == statement_hash
            && e.leaf["at_ms"] == at
            && e.leaf["chain"].is_string()
            && fields == 4,
        "log entry {} is not its {ty} leaf at {at}",
        e.index
    );
    Ok(())
}

/// A centre's registration is signed by the centre with the key it names
/// (so the platform cannot make one for a key it does not hold, nor rename
/// a centre), and is the statement its `centre.registered` leaf names.
fn check_centre(e: &CentreEntry, cp: &SignedCheckpoint, root: &Hash) -> Result<(), String> {
    let code = &e.centre.code;
    e.centre
        .check()
        .map_err(|why| format!("centre {code}: {why}"))?;
    let at = e.registered.leaf["at_ms"]
        .as_i64()
        .ok_or_else(|| format!("centre {code}: its registration leaf has no time"))?;
    let hash = sha256_hex(e.centre.statement().as_bytes());
    statement_leaf(&e.registered, "centre.registered", &hash, at, cp, root)
        .map_err(|why| format!("centre {code}: {why}"))
}

/// Every bidder and staff key and every centre of `t` (step 1a), under its
/// checkpoint `cp` whose root is `root`.
pub(super) fn check_keys(
    t: &super::Transcript,
    cp: &SignedCheckpoint,
    root: &Hash,
) -> Result<(), String> {
    for k in &t.bidder_keys {
        check_key(k.registration(), cp, root)?;
    }
    for k in &t.staff_keys {
        ensure!(
            k.purpose == "custodian_identity" || k.purpose == "supervisor_identity",
            "staff key {} of {}: {:?} is not a staff key's purpose",
            k.public_key,
            k.user,
            k.purpose
        );
        check_key(k.registration(), cp, root)?;
    }
    for e in t.evaluation.iter().flat_map(|x| &x.centres) {
        check_centre(e, cp, root)?;
    }
    Ok(())
}
