//! Formats of the transparency log (RFC 9162 Merkle tree over JCS leaves):
//! leaves, commitments that keep bid events confidential until the deadline,
//! platform-signed checkpoints, and receipts.
//!
//! - A leaf is a JSON object; its bytes are its JCS form; its hash is
//!   `SHA-256(0x00 || bytes)`.
//! - Events that would reveal who has bid before the deadline are logged as
//!   a *commitment* leaf `{"type":"commitment","commitment":C,"at_ms":T}` with
//!   `C = SHA-256(lp("kaibiao/log-commitment/v1") || salt(32) || JCS(event))`;
//!   the bidder gets `(salt, event)` in its promise at once, everyone gets
//!   them in the section's transcript after the deadline. Commitments are
//!   appended in steady flushes, padded with cover leaves (ADR 9): `T` is the
//!   flush's time, at or after the event's.
//! - A checkpoint `{"log":"kaibiao","size":n,"root":hex,"at_ms":t}` is signed
//!   by the platform: `Ed25519("kaibiao/log-checkpoint/v1" || 0x00 || JCS)`.
//! - Every leaf of a section carries `chain`, a tag that binds it to the
//!   section's previous leaf, keyed by the section's chain key
//!   ([`chain_tag`], ADR 8): once the manifest reveals the key, a transcript
//!   missing any leaf of its section no longer verifies; until then nobody
//!   can tell which leaves belong together. A section head signed by the
//!   platform ([`SignedSectionHead`]) closes the chain at a checkpoint.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::merkle::{self, Hash};
use super::{jcs, sign};

pub const LOG_NAME: &str = "kaibiao";
pub const CHECKPOINT_LABEL: &str = "kaibiao/log-checkpoint/v1";
pub const RECEIPT_LABEL: &str = "kaibiao/receipt/v1";
pub const COMMITMENT_LABEL: &str = "kaibiao/log-commitment/v1";
pub const RECEIPT_FORMAT: &str = "kaibiao-receipt/3";
/// A receipt before its flush: everything but `log` (ADR 9).
pub const PROMISE_FORMAT: &str = "kaibiao-receipt-promise/1";
pub const PROMISE_LABEL: &str = "kaibiao/receipt-promise/v1";
pub const CHAIN_LABEL: &str = "kaibiao/log-chain/v1";
pub const HEAD_LABEL: &str = "kaibiao/section-head/v1";
pub const HEAD_FORMAT: &str = "kaibiao-section-head/1";

pub fn leaf_bytes(leaf: &Value) -> Vec<u8> {
    jcs::canonicalize(leaf).expect("leaves are plain JSON")
}

pub fn leaf_hash(leaf: &Value) -> Hash {
    merkle::leaf_hash(&leaf_bytes(leaf))
}

pub fn commitment(salt: &[u8; 32], event: &Value) -> String {
    let mut m = Vec::new();
    m.extend_from_slice(&(COMMITMENT_LABEL.len() as u32).to_be_bytes());
    m.extend_from_slice(COMMITMENT_LABEL.as_bytes());
    m.extend_from_slice(salt);
    m.extend_from_slice(&jcs::canonicalize(event).expect("events are plain JSON"));
    super::sha256_hex(&m)
}

/// A commitment leaf before its place in a chain is known: [`chain_tag`]
/// is added by the log when it is appended.
pub fn commitment_leaf(commitment: &str, at_ms: i64) -> Value {
    serde_json::json!({"type": "commitment", "commitment": commitment, "at_ms": at_ms})
}

/// `leaf` is exactly a commitment leaf for `commitment`, appended at or
/// after `not_before_ms` (the event's time: the flush that appended it came
/// later, ADR 9), with a well-formed chain tag (which only the chain key can
/// check).
pub fn is_commitment_leaf(leaf: &Value, commitment: &str, not_before_ms: i64) -> bool {
    let Some(obj) = leaf.as_object() else {
        return false;
    };
    obj.len() == 4
        && leaf["type"] == "commitment"
        && leaf["commitment"] == commitment
        && leaf["at_ms"].as_i64().is_some_and(|t| t >= not_before_ms)
        && leaf["chain"]
            .as_str()
            .is_some_and(|t| super::hex_array::<32>(t).is_some())
}

/// The chain tag of the `seq`-th leaf of a section (from 1), whose previous
/// leaf hashes to `prev` (32 zero bytes for the first):
/// `HMAC-SHA256(K_s, lp("kaibiao/log-chain/v1") || u64_be(seq) || prev)`.
pub fn chain_tag(key: &[u8; 32], seq: u64, prev: &Hash) -> String {
    let mut m = Vec::with_capacity(4 + CHAIN_LABEL.len() + 8 + 32);
    m.extend_from_slice(&(CHAIN_LABEL.len() as u32).to_be_bytes());
    m.extend_from_slice(CHAIN_LABEL.as_bytes());
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend_from_slice(prev);
    hex::encode(super::hmac_sha256(key, &m))
}

/// Where a section's chain stands: how many leaves, the last one's hash and
/// index (`seq == 0` before the first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ChainState {
    pub seq: u64,
    pub prev: Hash,
    pub index: u64,
}

impl ChainState {
    /// Adds `chain` to `leaf` as the next leaf of the chain, at `index`.
    pub fn extend(&mut self, key: &[u8; 32], leaf: &mut Value, index: u64) {
        self.seq += 1;
        leaf["chain"] = Value::from(chain_tag(key, self.seq, &self.prev));
        self.prev = leaf_hash(leaf);
        self.index = index;
    }
}

/// Walks a section's leaves in log order and checks that they are its whole
/// chain from the first leaf: each leaf's `chain` is the tag of its place
/// after the one before. Returns where the chain ends.
pub fn check_chain<'a>(
    key: &[u8; 32],
    leaves: impl IntoIterator<Item = (u64, &'a Value)>,
) -> Result<ChainState, String> {
    let mut at = ChainState::default();
    for (index, leaf) in leaves {
        let want = chain_tag(key, at.seq + 1, &at.prev);
        if leaf["chain"].as_str() != Some(want.as_str()) {
            return Err(format!(
                "the section's log is not complete: the entry at index {index} is not leaf {} of the section's chain (a leaf before it is missing, or it is not the section's)",
                at.seq + 1
            ));
        }
        at = ChainState {
            seq: at.seq + 1,
            prev: leaf_hash(leaf),
            index,
        };
    }
    Ok(at)
}

/// The head of a section's chain at a checkpoint: how many leaves the
/// section has, the last one's hash and index, and the log size they are
/// counted in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SectionHead {
    pub format: String,
    pub section_id: String,
    pub seq: u64,
    /// The RFC 9162 leaf hash of the section's last leaf, hex.
    pub head: String,
    /// The last leaf's index in the log.
    pub index: u64,
    /// The checkpoint size the head is taken at.
    pub log_size: u64,
}

/// A section head signed by the platform:
/// `Ed25519("kaibiao/section-head/v1" || 0x00 || JCS(head))`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignedSectionHead {
    pub head: SectionHead,
    pub signature: String,
}

impl SignedSectionHead {
    pub fn sign(h: SectionHead, key: &ed25519_dalek::SigningKey) -> Self {
        let sig = sign::sign(key, HEAD_LABEL, &jcs::to_vec(&h).expect("head"));
        Self {
            head: h,
            signature: hex::encode(sig),
        }
    }
    pub fn verify(&self, platform_key_hex: &str) -> bool {
        self.head.format == HEAD_FORMAT
            && sign::verify_hex(
                platform_key_hex,
                HEAD_LABEL,
                &jcs::to_vec(&self.head).expect("head"),
                &self.signature,
            )
            .is_ok()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    pub log: String,
    pub size: u64,
    pub root: String,
    pub at_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignedCheckpoint {
    pub checkpoint: Checkpoint,
    pub signature: String,
}

impl SignedCheckpoint {
    pub fn sign(c: Checkpoint, key: &ed25519_dalek::SigningKey) -> Self {
        let sig = sign::sign(key, CHECKPOINT_LABEL, &jcs::to_vec(&c).expect("checkpoint"));
        Self {
            checkpoint: c,
            signature: hex::encode(sig),
        }
    }
    pub fn verify(&self, platform_key_hex: &str) -> bool {
        self.checkpoint.log == LOG_NAME
            && sign::verify_hex(
                platform_key_hex,
                CHECKPOINT_LABEL,
                &jcs::to_vec(&self.checkpoint).expect("checkpoint"),
                &self.signature,
            )
            .is_ok()
    }
    pub fn root(&self) -> Option<Hash> {
        super::hex_array(&self.checkpoint.root)
    }
}

/// An opened commitment: the salt and the event it hides.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Opening {
    pub salt: String,
    #[schema(value_type = crate::domain::opaque::CommittedEvent)]
    pub event: Value,
}

impl Opening {
    pub fn commitment(&self) -> Option<String> {
        let salt: [u8; 32] = super::hex_array(&self.salt)?;
        Some(commitment(&salt, &self.event))
    }
}

/// Where a leaf stands in the log, provably.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LogPosition {
    pub index: u64,
    #[schema(value_type = crate::domain::opaque::LogLeaf)]
    pub leaf: Value,
    pub inclusion_proof: Vec<String>,
    pub checkpoint: SignedCheckpoint,
}

impl LogPosition {
    /// The leaf is in the tree the checkpoint signs.
    pub fn verify(&self, platform_key_hex: &str) -> Result<(), String> {
        if !self.checkpoint.verify(platform_key_hex) {
            return Err("the checkpoint signature does not verify".into());
        }
        let root = self.checkpoint.root().ok_or("malformed checkpoint root")?;
        let proof: Vec<Hash> = self
            .inclusion_proof
            .iter()
            .map(|h| super::hex_array(h).ok_or("malformed proof"))
            .collect::<Result<_, _>>()?;
        merkle::verify_inclusion(
            self.index,
            self.checkpoint.checkpoint.size,
            &leaf_hash(&self.leaf),
            &proof,
            &root,
        )
        .map_err(|e| format!("the leaf is not in the log: {e}"))
    }
}

/// The receipt for a completed submission or a withdrawal (DESIGN §3): it
/// binds the exact bytes, the deadline, the time received and the log
/// position, signed by the platform. It comes in two steps (ADR 9): at once
/// a *promise* (`kaibiao-receipt-promise/1`, no `log`, signed under
/// `kaibiao/receipt-promise/v1`) naming the flush that will log it, then,
/// after that flush, the receipt (`kaibiao-receipt/3`, the same fields and
/// `log`, signed under `kaibiao/receipt/v1`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Receipt {
    pub format: String,
    /// `submission` or `withdrawal`.
    pub kind: String,
    pub section_id: String,
    pub bidder: String,
    pub bid_id: String,
    pub revision: u32,
    pub envelope_hash: String,
    pub parts: Vec<ReceiptPart>,
    pub deadline_ms: i64,
    pub grace_ms: i64,
    pub envelope_received_at_ms: i64,
    /// When the last part arrived (submission) or the withdrawal was recorded.
    pub completed_at_ms: i64,
    pub opening: Opening,
    /// The scheduled flush that logs the commitment (ADR 9); the leaf's
    /// `at_ms` is the time the flush ran, at or after `completed_at_ms`.
    pub flush_at_ms: i64,
    /// Where the commitment is in the log: absent in a promise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<LogPosition>,
    pub platform_key: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReceiptPart {
    pub name: String,
    pub length: u64,
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignedReceipt {
    pub receipt: Receipt,
    pub signature: String,
}

impl SignedReceipt {
    fn label(format: &str) -> &'static str {
        if format == PROMISE_FORMAT {
            PROMISE_LABEL
        } else {
            RECEIPT_LABEL
        }
    }

    /// Signs a receipt or a promise, under the label its format names.
    pub fn sign(r: Receipt, key: &ed25519_dalek::SigningKey) -> Self {
        let label = Self::label(&r.format);
        let sig = sign::sign(key, label, &jcs::to_vec(&r).expect("receipt"));
        Self {
            receipt: r,
            signature: hex::encode(sig),
        }
    }

    /// The receipt that fulfils this promise, at `log`.
    pub fn fulfil(&self, log: LogPosition, key: &ed25519_dalek::SigningKey) -> Self {
        let mut r = self.receipt.clone();
        r.format = RECEIPT_FORMAT.into();
        r.log = Some(log);
        Self::sign(r, key)
    }

    /// The commitment's index in the log (none in a promise).
    pub fn log_index(&self) -> Option<u64> {
        self.receipt.log.as_ref().map(|l| l.index)
    }

    /// Whether this receipt says everything `promise` said (and adds `log`).
    pub fn fulfils(&self, promise: &SignedReceipt) -> bool {
        let mut r = self.receipt.clone();
        r.format = PROMISE_FORMAT.into();
        r.log = None;
        r == promise.receipt
    }

    /// Everything a bidder can check alone: the platform's signature, that
    /// the receipt names these bytes, the times against the deadline, and
    /// that the event is in the signed log.
    pub fn verify(&self, platform_key_hex: &str, envelope_hash: &str) -> Result<(), String> {
        let r = &self.receipt;
        if r.format != RECEIPT_FORMAT {
            return Err("unknown receipt format".into());
        }
        let log = r.log.as_ref().ok_or("the receipt has no log position")?;
        self.check(platform_key_hex, envelope_hash)?;
        // The opening is the log's commitment, and names this bid.
        let c = r.opening.commitment().ok_or("malformed opening")?;
        if !is_commitment_leaf(&log.leaf, &c, r.completed_at_ms) {
            return Err("the log leaf is not the commitment to this event".into());
        }
        log.verify(platform_key_hex)
    }

    /// A promise (ADR 9): signed, for these bytes, in time, its flush
    /// scheduled after its event. With no leaf for its commitment in a log
    /// signed after `flush_at_ms`, it is the platform's signed word that it
    /// accepted a bid it did not log.
    pub fn verify_promise(
        &self,
        platform_key_hex: &str,
        envelope_hash: &str,
    ) -> Result<(), String> {
        let r = &self.receipt;
        if r.format != PROMISE_FORMAT || r.log.is_some() {
            return Err("not a receipt promise".into());
        }
        self.check(platform_key_hex, envelope_hash)?;
        if r.flush_at_ms <= r.completed_at_ms {
            return Err("the promised flush is not after the event".into());
        }
        Ok(())
    }

    /// What a receipt and a promise share: the signature, the bytes, the
    /// times, an opening that names this bid.
    fn check(&self, platform_key_hex: &str, envelope_hash: &str) -> Result<(), String> {
        let r = &self.receipt;
        if r.platform_key != platform_key_hex {
            return Err("the receipt names another platform key".into());
        }
        sign::verify_hex(
            platform_key_hex,
            Self::label(&r.format),
            &jcs::to_vec(r).expect("receipt"),
            &self.signature,
        )
        .map_err(|_| "the platform's signature on the receipt does not verify".to_string())?;
        if r.envelope_hash != envelope_hash {
            return Err("the receipt is for another envelope".into());
        }
        if r.envelope_received_at_ms >= r.deadline_ms {
            return Err("the envelope arrived at or after the deadline".into());
        }
        let limit = if r.kind == "submission" {
            r.deadline_ms + r.grace_ms
        } else {
            r.deadline_ms
        };
        if r.completed_at_ms >= limit || r.completed_at_ms < r.envelope_received_at_ms {
            return Err("the completion time is outside the allowed window".into());
        }
        r.opening.commitment().ok_or("malformed opening")?;
        let e = &r.opening.event;
        let names = |k: &str, v: &Value| e.get(k) == Some(v);
        if !(names("envelope_hash", &Value::from(r.envelope_hash.as_str()))
            && names("section_id", &Value::from(r.section_id.as_str()))
            && names("bidder", &Value::from(r.bidder.as_str())))
        {
            return Err("the committed event does not name this bid".into());
        }
        Ok(())
    }
}
