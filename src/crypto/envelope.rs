//! `sealed-bid/1`: building, verifying and opening sealed bids. The byte
//! layouts are specified in `docs/PROTOCOL.md`; this file is their
//! reference implementation, used by the bidder's client, the server and the
//! offline verifier alike.
//!
//! A bid is a signed JSON envelope plus two ciphertext parts:
//! - `summary` — the 开标一览表, a JSON object signed inside by the bidder;
//! - `documents` — the bid files.
//!
//! A fresh 32-byte bid master key (BMK) per revision derives one key per part
//! (HKDF-SHA256), each part is AES-256-GCM in 1 MiB chunks, and a key
//! commitment per part binds the BMK to the ciphertexts. The BMK is split
//! t-of-n with Shamir over GF(256); each share is wrapped with HPKE to one
//! custodian's per-section key; the BMK itself is wrapped to the bidder's own
//! X25519 key. No hash of any plaintext appears anywhere.

use std::collections::BTreeMap;
use std::io::{Read, Write};

use ed25519_dalek::{SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use zeroize::Zeroizing;

use super::shamir::{self, ShamirError};
use super::stream::{self, StreamError};
use super::{hkdf, hpke, jcs, sign, x25519};
use crate::domain::decimal::Money;
use crate::domain::section::{SummaryField, SummaryFieldKind};

pub const VERSION: &str = "sealed-bid/1";
pub const SUITE: &str = "DHKEM-X25519-HKDF-SHA256/HKDF-SHA256/AES-256-GCM/chunked-1MiB";
pub const SUMMARY_FORMAT: &str = "kaibiao-bid-summary/1";
pub const PART_SUMMARY: &str = "summary";
pub const PART_DOCUMENTS: &str = "documents";
/// The largest summary plaintext accepted.
pub const MAX_SUMMARY_BYTES: u64 = 64 * 1024;

pub mod label {
    pub const ENVELOPE: &str = "kaibiao/sealed-bid/1/envelope";
    pub const SUMMARY: &str = "kaibiao/sealed-bid/1/summary";
    pub const WITHDRAWAL: &str = "kaibiao/sealed-bid/1/withdrawal";
    pub const BMK_SALT: &str = "kaibiao/sealed-bid/1/bmk";
    pub const PART_KEY: &str = "kaibiao/sealed-bid/1/part-key";
    pub const KEY_COMMITMENT: &str = "kaibiao/sealed-bid/1/key-commitment";
    pub const SHARE: &str = "kaibiao/sealed-bid/1/share";
    pub const BIDDER_COPY: &str = "kaibiao/sealed-bid/1/bidder-copy";
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Part {
    pub name: String,
    /// Ciphertext length in bytes.
    pub length: u64,
    /// SHA-256 of the ciphertext, hex.
    pub sha256: String,
    pub key_commitment: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Recipient {
    /// `custodian` (a Shamir share of the BMK) or `bidder` (the BMK itself).
    pub kind: String,
    /// The custodian's position in the section (1-based); 0 for the bidder.
    pub position: u32,
    pub public_key: String,
    /// HPKE encapsulated key, hex.
    pub enc: String,
    /// HPKE ciphertext, hex.
    pub ct: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Envelope {
    pub version: String,
    pub suite: String,
    pub section_id: String,
    pub params_hash: String,
    /// 16 random bytes, hex; the same for every revision of one bid.
    pub bid_id: String,
    pub revision: u32,
    /// Envelope hash of the revision this one replaces (revision > 1).
    pub supersedes: Option<String>,
    pub bidder: String,
    pub signer_key: String,
    /// The client's clock when sealing; informational only.
    pub created_at_ms: i64,
    pub parts: Vec<Part>,
    pub threshold: u32,
    pub recipients: Vec<Recipient>,
}

/// What is submitted: the envelope and the bidder's signature over it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignedEnvelope {
    /// The envelope exactly as signed (it must be in canonical form).
    #[schema(value_type = Envelope)]
    pub envelope: Value,
    pub signature: String,
}

impl Envelope {
    pub fn canonical(&self) -> Vec<u8> {
        jcs::to_vec(self).expect("envelopes canonicalise")
    }
    /// SHA-256 of the canonical envelope, hex: the bid's identity everywhere.
    pub fn hash(&self) -> String {
        super::sha256_hex(&self.canonical())
    }
    pub fn part(&self, name: &str) -> Option<&Part> {
        self.parts.iter().find(|p| p.name == name)
    }
}

/// `u32 big-endian length || bytes`: every variable-length field in a derivation.
fn lp(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_be_bytes());
    out.extend_from_slice(b);
}

fn context(label: &str, section_id: &str, bid_id: &str, revision: u32) -> Vec<u8> {
    let mut c = Vec::new();
    lp(&mut c, label.as_bytes());
    lp(&mut c, section_id.as_bytes());
    lp(&mut c, bid_id.as_bytes());
    c.extend_from_slice(&revision.to_be_bytes());
    c
}

/// The key of one part: `HKDF-Expand(HKDF-Extract(salt, BMK), info, 32)`.
pub fn part_key(
    bmk: &[u8; 32],
    section_id: &str,
    bid_id: &str,
    revision: u32,
    part: &str,
) -> Zeroizing<[u8; 32]> {
    let prk = hkdf::extract(label::BMK_SALT.as_bytes(), bmk);
    let mut info = context(label::PART_KEY, section_id, bid_id, revision);
    lp(&mut info, part.as_bytes());
    let k = hkdf::expand(prk.as_slice(), &info, 32);
    Zeroizing::new(k.as_slice().try_into().expect("32 bytes"))
}

/// `SHA-256(context("…/key-commitment") || lp(part) || part_key)`, hex.
pub fn key_commitment(
    key: &[u8; 32],
    section_id: &str,
    bid_id: &str,
    revision: u32,
    part: &str,
) -> String {
    let mut m = context(label::KEY_COMMITMENT, section_id, bid_id, revision);
    lp(&mut m, part.as_bytes());
    m.extend_from_slice(key);
    super::sha256_hex(&m)
}

fn share_info(section_id: &str, bid_id: &str, revision: u32, position: u32) -> Vec<u8> {
    let mut i = context(label::SHARE, section_id, bid_id, revision);
    i.extend_from_slice(&position.to_be_bytes());
    i
}

fn bidder_info(section_id: &str, bid_id: &str, revision: u32) -> Vec<u8> {
    context(label::BIDDER_COPY, section_id, bid_id, revision)
}

// ----------------------------------------------------------------- summary

/// The 开标一览表 as the bidder states it: field key → value, every value a
/// string (money as a decimal string).
pub type SummaryFields = BTreeMap<String, String>;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SummaryBody {
    pub format: String,
    pub section_id: String,
    pub bid_id: String,
    pub revision: u32,
    pub bidder: String,
    pub fields: SummaryFields,
}

/// The summary part's plaintext: the body and the bidder's signature over it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedSummary {
    pub summary: SummaryBody,
    pub signature: String,
}

/// Checks stated values against the section's declared fields.
pub fn check_summary_fields(
    declared: &[SummaryField],
    fields: &SummaryFields,
) -> Result<(), String> {
    for f in declared {
        match fields.get(&f.key) {
            None if f.required => return Err(format!("{} is required", f.key)),
            None => {}
            Some(v) => match f.kind {
                SummaryFieldKind::Money => {
                    Money::parse(v).map_err(|e| format!("{}: {e}", f.key))?;
                }
                SummaryFieldKind::Integer => {
                    v.parse::<i64>()
                        .map_err(|_| format!("{}: must be a whole number", f.key))?;
                }
                SummaryFieldKind::Text => {
                    if v.chars().count() > 500 {
                        return Err(format!("{}: at most 500 characters", f.key));
                    }
                }
            },
        }
    }
    if let Some(extra) = fields
        .keys()
        .find(|k| !declared.iter().any(|f| &f.key == *k))
    {
        return Err(format!("{extra} is not a field of this section"));
    }
    Ok(())
}

// ------------------------------------------------------------------ sealing

/// The public facts of a section that sealing needs (from its published
/// parameters).
#[derive(Debug, Clone)]
pub struct SectionKeys {
    pub section_id: String,
    pub params_hash: String,
    pub threshold: u32,
    /// `(position, X25519 public key)` of each custodian.
    pub custodians: Vec<(u32, [u8; 32])>,
    pub summary_fields: Vec<SummaryField>,
}

pub struct BidderIdentity<'a> {
    pub org_id: &'a str,
    pub signing: &'a SigningKey,
    pub encryption_public: [u8; 32],
}

/// What the bidder decides for this revision.
pub struct BidContent<R: Read> {
    /// `None` for a new bid (a random id is drawn).
    pub bid_id: Option<String>,
    pub revision: u32,
    pub supersedes: Option<String>,
    pub fields: SummaryFields,
    pub documents: R,
    pub documents_len: u64,
    pub now_ms: i64,
}

pub struct SealedBid {
    pub signed: SignedEnvelope,
    pub envelope: Envelope,
    pub hash: String,
    /// The summary ciphertext (small); the documents went to the writer.
    pub summary_ciphertext: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("the bid summary does not fit the section: {0}")]
    Summary(String),
    #[error(transparent)]
    Stream(#[from] StreamError),
    #[error("sharing the key failed: {0}")]
    Shamir(#[from] ShamirError),
    #[error("a recipient key was refused: {0}")]
    Hpke(#[from] hpke::HpkeError),
}

/// Seals one revision of a bid: the documents are encrypted from
/// `content.documents` into `documents_out` as they are read (bounded
/// memory); `progress` is told the document bytes done.
pub fn seal<R: Read>(
    section: &SectionKeys,
    bidder: &BidderIdentity<'_>,
    content: BidContent<R>,
    documents_out: impl Write,
    progress: &mut dyn FnMut(u64),
) -> Result<SealedBid, SealError> {
    check_summary_fields(&section.summary_fields, &content.fields).map_err(SealError::Summary)?;
    let bid_id = content
        .bid_id
        .unwrap_or_else(|| hex::encode(super::random_bytes::<16>()));
    let rev = content.revision;
    let sid = section.section_id.as_str();
    let bmk = Zeroizing::new(super::random_bytes::<32>());

    // Summary: signed inside, then encrypted.
    let body = SummaryBody {
        format: SUMMARY_FORMAT.into(),
        section_id: sid.into(),
        bid_id: bid_id.clone(),
        revision: rev,
        bidder: bidder.org_id.into(),
        fields: content.fields,
    };
    let sig = sign::sign(
        bidder.signing,
        label::SUMMARY,
        &jcs::to_vec(&body).expect("summary"),
    );
    let summary_pt = Zeroizing::new(
        jcs::to_vec(&SignedSummary {
            summary: body,
            signature: hex::encode(sig),
        })
        .expect("summary"),
    );
    if summary_pt.len() as u64 > MAX_SUMMARY_BYTES {
        return Err(SealError::Summary("the summary is too large".into()));
    }
    let k_sum = part_key(&bmk, sid, &bid_id, rev, PART_SUMMARY);
    let (summary_ct, s_sum) = stream::seal_to_vec(&k_sum, &summary_pt);

    let k_doc = part_key(&bmk, sid, &bid_id, rev, PART_DOCUMENTS);
    let s_doc = stream::seal(
        &k_doc,
        content.documents,
        content.documents_len,
        documents_out,
        progress,
    )?;

    let parts = vec![
        Part {
            name: PART_SUMMARY.into(),
            length: s_sum.ciphertext_len,
            sha256: hex::encode(s_sum.sha256),
            key_commitment: key_commitment(&k_sum, sid, &bid_id, rev, PART_SUMMARY),
        },
        Part {
            name: PART_DOCUMENTS.into(),
            length: s_doc.ciphertext_len,
            sha256: hex::encode(s_doc.sha256),
            key_commitment: key_commitment(&k_doc, sid, &bid_id, rev, PART_DOCUMENTS),
        },
    ];

    let mut recipients = Vec::new();
    if !section.custodians.is_empty() {
        let n = section.custodians.len();
        let shares = shamir::split(bmk.as_slice(), section.threshold as usize, n)?;
        for ((position, pk), share) in section.custodians.iter().zip(shares.iter()) {
            // Share x-coordinates are 1..n in custodian order; the position
            // is carried in the HPKE info, so a share cannot be moved.
            let (enc, ct) =
                hpke::seal_base(pk, &share_info(sid, &bid_id, rev, *position), &[], share)?;
            recipients.push(Recipient {
                kind: "custodian".into(),
                position: *position,
                public_key: hex::encode(pk),
                enc: hex::encode(enc),
                ct: hex::encode(ct),
            });
        }
    }
    let (enc, ct) = hpke::seal_base(
        &bidder.encryption_public,
        &bidder_info(sid, &bid_id, rev),
        &[],
        bmk.as_slice(),
    )?;
    recipients.push(Recipient {
        kind: "bidder".into(),
        position: 0,
        public_key: hex::encode(bidder.encryption_public),
        enc: hex::encode(enc),
        ct: hex::encode(ct),
    });

    let envelope = Envelope {
        version: VERSION.into(),
        suite: SUITE.into(),
        section_id: sid.into(),
        params_hash: section.params_hash.clone(),
        bid_id,
        revision: rev,
        supersedes: content.supersedes,
        bidder: bidder.org_id.into(),
        signer_key: hex::encode(bidder.signing.verifying_key().to_bytes()),
        created_at_ms: content.now_ms,
        parts,
        threshold: if section.custodians.is_empty() {
            0
        } else {
            section.threshold
        },
        recipients,
    };
    let canonical = envelope.canonical();
    let signature = hex::encode(sign::sign(bidder.signing, label::ENVELOPE, &canonical));
    let hash = super::sha256_hex(&canonical);
    Ok(SealedBid {
        signed: SignedEnvelope {
            envelope: serde_json::to_value(&envelope).expect("envelope"),
            signature,
        },
        envelope,
        hash,
        summary_ciphertext: summary_ct,
    })
}

// ------------------------------------------------------------ verification

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EnvelopeError {
    #[error("malformed envelope: {0}")]
    Malformed(String),
    #[error("the envelope is not in canonical form (fields added, dropped or re-typed)")]
    NotCanonical,
    #[error("the signature does not verify with the signer key (strict Ed25519)")]
    Signature,
    #[error("the signer key is not the bidder's registered signing key")]
    SignerKey,
    #[error("{0}")]
    Mismatch(String),
}

/// What the server (or a verifier) knows independently of the envelope.
pub struct Expectations<'a> {
    pub section: &'a SectionKeys,
    /// The bidder's registered signing key, hex.
    pub signer_key: &'a str,
    /// The bidder's registered encryption key, hex.
    pub encryption_key: &'a str,
    pub max_documents_bytes: u64,
}

fn is_hex(s: &str, bytes: usize) -> bool {
    s.len() == bytes * 2
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Parses a submitted envelope and checks its signature and its canonical
/// form — everything that needs no knowledge of the section.
pub fn parse_signed(signed: &SignedEnvelope) -> Result<(Envelope, String), EnvelopeError> {
    let env: Envelope = serde_json::from_value(signed.envelope.clone())
        .map_err(|e| EnvelopeError::Malformed(e.to_string()))?;
    let as_sent =
        jcs::canonicalize(&signed.envelope).map_err(|e| EnvelopeError::Malformed(e.to_string()))?;
    let canonical = env.canonical();
    if as_sent != canonical {
        return Err(EnvelopeError::NotCanonical);
    }
    let key = sign::parse_public(&env.signer_key).map_err(|_| EnvelopeError::Signature)?;
    let sig = super::from_hex(&signed.signature).ok_or(EnvelopeError::Signature)?;
    sign::verify(&key, label::ENVELOPE, &canonical, &sig).map_err(|_| EnvelopeError::Signature)?;
    Ok((env, super::sha256_hex(&canonical)))
}

/// Checks a parsed envelope against the section and the bidder's keys.
pub fn check(env: &Envelope, x: &Expectations<'_>) -> Result<(), EnvelopeError> {
    let bad = |m: &str| Err(EnvelopeError::Mismatch(m.to_string()));
    if env.version != VERSION {
        return bad("unknown protocol version");
    }
    if env.suite != SUITE {
        return bad("unknown cipher suite");
    }
    if env.signer_key != x.signer_key {
        return Err(EnvelopeError::SignerKey);
    }
    if env.section_id != x.section.section_id {
        return bad("the envelope is for another section");
    }
    if env.params_hash != x.section.params_hash {
        return bad(
            "the envelope was sealed against other section parameters than those published now",
        );
    }
    if !is_hex(&env.bid_id, 16) {
        return bad("bid_id must be 16 bytes of lower-case hex");
    }
    if env.revision == 0 {
        return bad("revisions start at 1");
    }
    match (&env.supersedes, env.revision) {
        (None, 1) => {}
        (Some(h), r) if r > 1 && is_hex(h, 32) => {}
        _ => return bad("revision 1 supersedes nothing; every later revision names the envelope hash it supersedes"),
    }
    let names: Vec<&str> = env.parts.iter().map(|p| p.name.as_str()).collect();
    if names != [PART_SUMMARY, PART_DOCUMENTS] {
        return bad("the parts must be \"summary\" then \"documents\"");
    }
    for p in &env.parts {
        let plain = stream::plaintext_len(p.length).ok_or_else(|| {
            EnvelopeError::Mismatch(format!("{}: impossible ciphertext length", p.name))
        })?;
        let limit = if p.name == PART_SUMMARY {
            MAX_SUMMARY_BYTES
        } else {
            x.max_documents_bytes
        };
        if plain > limit {
            return Err(EnvelopeError::Mismatch(format!(
                "{}: larger than the limit of {limit} bytes",
                p.name
            )));
        }
        if !is_hex(&p.sha256, 32) || !is_hex(&p.key_commitment, 32) {
            return Err(EnvelopeError::Mismatch(format!(
                "{}: hashes must be 32 bytes of lower-case hex",
                p.name
            )));
        }
    }
    let custodians: Vec<&Recipient> = env
        .recipients
        .iter()
        .filter(|r| r.kind == "custodian")
        .collect();
    let bidders: Vec<&Recipient> = env
        .recipients
        .iter()
        .filter(|r| r.kind == "bidder")
        .collect();
    if custodians.len() + bidders.len() != env.recipients.len() {
        return bad("unknown recipient kind");
    }
    let want_threshold = if x.section.custodians.is_empty() {
        0
    } else {
        x.section.threshold
    };
    if env.threshold != want_threshold {
        return bad("the threshold differs from the section's");
    }
    if custodians.len() != x.section.custodians.len() {
        return bad("the recipients do not match the section's custodians");
    }
    for (r, (pos, pk)) in custodians.iter().zip(&x.section.custodians) {
        if r.position != *pos || r.public_key != hex::encode(pk) {
            return bad("the recipients do not match the section's custodians");
        }
        // A share is 33 bytes (x || 32 bytes), sealed with a 16-byte tag.
        if !is_hex(&r.enc, 32) || !is_hex(&r.ct, 33 + 16) {
            return bad("malformed custodian recipient");
        }
    }
    match bidders.as_slice() {
        [b] if b.public_key == x.encryption_key
            && b.position == 0
            && is_hex(&b.enc, 32)
            && is_hex(&b.ct, 32 + 16) => {}
        [_] => {
            return bad("the bidder's own copy must be wrapped to its registered encryption key")
        }
        _ => return bad("exactly one bidder copy is required"),
    }
    Ok(())
}

// ------------------------------------------------------------------ opening

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OpenError {
    #[error("the wrapped key does not open with this private key")]
    Unwrap,
    #[error("the key shares are inconsistent: {0}")]
    Shares(ShamirError),
    #[error("the key commitment of part {0} does not match: the bid is malformed")]
    Commitment(String),
    #[error("part {0} does not decrypt with its key")]
    Decrypt(String),
    #[error("the summary is malformed or its signature is wrong: {0}")]
    Summary(String),
}

/// A custodian unwraps its share of a bid with its section key.
pub fn open_share(
    env: &Envelope,
    position: u32,
    sk: &x25519::SecretKey,
) -> Result<Zeroizing<Vec<u8>>, OpenError> {
    let r = env
        .recipients
        .iter()
        .find(|r| r.kind == "custodian" && r.position == position)
        .ok_or(OpenError::Unwrap)?;
    let enc: [u8; 32] = super::hex_array(&r.enc).ok_or(OpenError::Unwrap)?;
    let ct = super::from_hex(&r.ct).ok_or(OpenError::Unwrap)?;
    hpke::open_base(
        &enc,
        sk,
        &share_info(&env.section_id, &env.bid_id, env.revision, position),
        &[],
        &ct,
    )
    .map_err(|_| OpenError::Unwrap)
}

/// The bidder unwraps its own copy of the BMK.
pub fn open_bidder_copy(
    env: &Envelope,
    sk: &x25519::SecretKey,
) -> Result<Zeroizing<[u8; 32]>, OpenError> {
    let r = env
        .recipients
        .iter()
        .find(|r| r.kind == "bidder")
        .ok_or(OpenError::Unwrap)?;
    let enc: [u8; 32] = super::hex_array(&r.enc).ok_or(OpenError::Unwrap)?;
    let ct = super::from_hex(&r.ct).ok_or(OpenError::Unwrap)?;
    let bmk = hpke::open_base(
        &enc,
        sk,
        &bidder_info(&env.section_id, &env.bid_id, env.revision),
        &[],
        &ct,
    )
    .map_err(|_| OpenError::Unwrap)?;
    Ok(Zeroizing::new(
        bmk.as_slice().try_into().map_err(|_| OpenError::Unwrap)?,
    ))
}

/// Rebuilds the BMK from at least `threshold` shares.
pub fn recover_bmk(env: &Envelope, shares: &[&[u8]]) -> Result<Zeroizing<[u8; 32]>, OpenError> {
    let bmk = shamir::recover_checked(env.threshold as usize, shares).map_err(OpenError::Shares)?;
    Ok(Zeroizing::new(bmk.as_slice().try_into().map_err(|_| {
        OpenError::Shares(ShamirError::LengthMismatch)
    })?))
}

/// Checks every part's key commitment against a BMK; returns the part keys.
pub fn part_keys(
    env: &Envelope,
    bmk: &[u8; 32],
) -> Result<BTreeMap<String, Zeroizing<[u8; 32]>>, OpenError> {
    let mut keys = BTreeMap::new();
    for p in &env.parts {
        let k = part_key(bmk, &env.section_id, &env.bid_id, env.revision, &p.name);
        if key_commitment(&k, &env.section_id, &env.bid_id, env.revision, &p.name)
            != p.key_commitment
        {
            return Err(OpenError::Commitment(p.name.clone()));
        }
        keys.insert(p.name.clone(), k);
    }
    Ok(keys)
}

/// Decrypts and checks the summary: its signature by the envelope's signer
/// and that it names this bid.
pub fn open_summary(
    env: &Envelope,
    key: &[u8; 32],
    ciphertext: &[u8],
) -> Result<SignedSummary, OpenError> {
    let pt = stream::open_to_vec(key, ciphertext)
        .map_err(|_| OpenError::Decrypt(PART_SUMMARY.into()))?;
    let s: SignedSummary =
        serde_json::from_slice(&pt).map_err(|e| OpenError::Summary(e.to_string()))?;
    let b = &s.summary;
    if b.format != SUMMARY_FORMAT
        || b.section_id != env.section_id
        || b.bid_id != env.bid_id
        || b.revision != env.revision
        || b.bidder != env.bidder
    {
        return Err(OpenError::Summary("it does not name this bid".into()));
    }
    if jcs::to_vec(&s).map_err(|e| OpenError::Summary(e.to_string()))? != pt.as_slice() {
        return Err(OpenError::Summary("not in canonical form".into()));
    }
    let body = jcs::to_vec(b).expect("summary body");
    sign::verify_hex(&env.signer_key, label::SUMMARY, &body, &s.signature)
        .map_err(|_| OpenError::Summary("the bidder's signature does not verify".into()))?;
    Ok(s)
}

// -------------------------------------------------------------- withdrawal

/// A bidder's signed request to withdraw its bid (all revisions).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Withdrawal {
    pub version: String,
    pub section_id: String,
    pub bid_id: String,
    /// The envelope hash of the bid's latest revision.
    pub envelope_hash: String,
    pub bidder: String,
    pub created_at_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignedWithdrawal {
    pub withdrawal: Withdrawal,
    pub signature: String,
}

impl SignedWithdrawal {
    pub fn sign(w: Withdrawal, key: &SigningKey) -> Self {
        let sig = sign::sign(
            key,
            label::WITHDRAWAL,
            &jcs::to_vec(&w).expect("withdrawal"),
        );
        Self {
            withdrawal: w,
            signature: hex::encode(sig),
        }
    }
    pub fn verify(&self, key: &VerifyingKey) -> bool {
        let Some(sig) = super::from_hex(&self.signature) else {
            return false;
        };
        sign::verify(
            key,
            label::WITHDRAWAL,
            &jcs::to_vec(&self.withdrawal).expect("withdrawal"),
            &sig,
        )
        .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn section(n: usize, t: u32) -> (SectionKeys, Vec<x25519::SecretKey>) {
        let sks: Vec<x25519::SecretKey> = (0..n).map(|_| x25519::SecretKey::generate()).collect();
        let custodians = sks
            .iter()
            .enumerate()
            .map(|(i, k)| (i as u32 + 1, k.public_key()))
            .collect();
        (
            SectionKeys {
                section_id: "sec_test".into(),
                params_hash: "ab".repeat(32),
                threshold: t,
                custodians,
                summary_fields: SummaryField::defaults(),
            },
            sks,
        )
    }

    fn fields(price: &str) -> SummaryFields {
        [
            ("price".to_string(), price.to_string()),
            ("duration_days".to_string(), "300".to_string()),
        ]
        .into()
    }

    #[test]
    fn seal_verify_and_open_by_custodians_and_by_the_bidder() {
        let (sec, custodian_keys) = section(5, 3);
        let signing = sign::generate();
        let enc = x25519::SecretKey::generate();
        let bidder = BidderIdentity {
            org_id: "org_b",
            signing: &signing,
            encryption_public: enc.public_key(),
        };
        let docs = vec![5u8; 3 * 1024 * 1024 + 7];
        let mut docs_ct = Vec::new();
        let sealed = seal(
            &sec,
            &bidder,
            BidContent {
                bid_id: None,
                revision: 1,
                supersedes: None,
                fields: fields("12345678.90"),
                documents: docs.as_slice(),
                documents_len: docs.len() as u64,
                now_ms: 1,
            },
            &mut docs_ct,
            &mut |_| {},
        )
        .unwrap();
        let (env, hash) = parse_signed(&sealed.signed).unwrap();
        assert_eq!(hash, sealed.hash);
        let signer = hex::encode(signing.verifying_key().to_bytes());
        let enc_pk = hex::encode(enc.public_key());
        let x = Expectations {
            section: &sec,
            signer_key: &signer,
            encryption_key: &enc_pk,
            max_documents_bytes: 10 << 20,
        };
        check(&env, &x).unwrap();
        assert_eq!(
            env.part(PART_DOCUMENTS).unwrap().sha256,
            crate::crypto::sha256_hex(&docs_ct)
        );
        // No plaintext hash anywhere in the envelope.
        let text = serde_json::to_string(&sealed.signed).unwrap();
        assert!(!text.contains("12345678.90"));
        assert!(!text.contains(&crate::crypto::sha256_hex(&docs)));

        // Three custodians open it.
        let shares: Vec<_> = [1u32, 3, 5]
            .iter()
            .map(|&p| open_share(&env, p, &custodian_keys[p as usize - 1]).unwrap())
            .collect();
        let refs: Vec<&[u8]> = shares.iter().map(|s| s.as_slice()).collect();
        let bmk = recover_bmk(&env, &refs).unwrap();
        let keys = part_keys(&env, &bmk).unwrap();
        let s = open_summary(&env, &keys[PART_SUMMARY], &sealed.summary_ciphertext).unwrap();
        assert_eq!(s.summary.fields["price"], "12345678.90");
        let mut out = Vec::new();
        stream::open(
            &keys[PART_DOCUMENTS],
            docs_ct.as_slice(),
            docs_ct.len() as u64,
            &mut out,
        )
        .unwrap();
        assert_eq!(out, docs);
        // So does the bidder with its own copy.
        assert_eq!(*open_bidder_copy(&env, &enc).unwrap(), *bmk);
        // Two shares are not enough; a share of another position does not open.
        assert!(matches!(
            recover_bmk(&env, &refs[..2]),
            Err(OpenError::Shares(_))
        ));
        assert_eq!(
            open_share(&env, 2, &custodian_keys[0]).unwrap_err(),
            OpenError::Unwrap
        );
    }

    #[test]
    fn every_tampered_field_is_caught() {
        let (sec, _) = section(5, 3);
        let signing = sign::generate();
        let enc = x25519::SecretKey::generate();
        let bidder = BidderIdentity {
            org_id: "org_b",
            signing: &signing,
            encryption_public: enc.public_key(),
        };
        let sealed = seal(
            &sec,
            &bidder,
            BidContent {
                bid_id: None,
                revision: 1,
                supersedes: None,
                fields: fields("1.00"),
                documents: &b"docs"[..],
                documents_len: 4,
                now_ms: 1,
            },
            Vec::new(),
            &mut |_| {},
        )
        .unwrap();
        // Change every leaf value of the envelope in turn: the signature fails.
        fn leaves(v: &Value, path: Vec<String>, out: &mut Vec<Vec<String>>) {
            match v {
                Value::Object(m) => m.iter().for_each(|(k, x)| {
                    let mut p = path.clone();
                    p.push(k.clone());
                    leaves(x, p, out)
                }),
                Value::Array(a) => a.iter().enumerate().for_each(|(i, x)| {
                    let mut p = path.clone();
                    p.push(i.to_string());
                    leaves(x, p, out)
                }),
                _ => out.push(path),
            }
        }
        let mut paths = Vec::new();
        leaves(&sealed.signed.envelope, vec![], &mut paths);
        assert!(paths.len() > 20);
        for p in paths {
            let mut t = sealed.signed.clone();
            let mut node = &mut t.envelope;
            for k in &p {
                node = if let Ok(i) = k.parse::<usize>() {
                    &mut node[i]
                } else {
                    &mut node[k.as_str()]
                };
            }
            *node = match node {
                Value::String(s) => Value::String(format!("{s}0")),
                Value::Number(n) => Value::from(n.as_i64().unwrap_or(0) + 1),
                Value::Null => Value::String("00".repeat(32)),
                other => panic!("unexpected leaf {other}"),
            };
            assert!(
                parse_signed(&t).is_err(),
                "tampering with {p:?} went unnoticed"
            );
        }
        // An extra field breaks the canonical form even with a valid signature.
        let mut t = sealed.signed.clone();
        t.envelope["note"] = Value::String("x".into());
        assert!(parse_signed(&t).is_err());
    }
}
