//! Key registration with proof of possession, rotation with history, and
//! custodians' per-section keys.

use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::action::{transact, Change};
use super::{Actor, Services};
use crate::crypto::keyproof::{SectionKeyStatement, Statement};
use crate::crypto::{self, sign, x25519};
use crate::db::keys::{self as repo, ChallengeRow, KeyRow, SectionKeyRow};
use crate::db::{audit, is_unique_violation, sections as sections_repo};
use crate::domain::identity::{KeyAlgorithm, KeyPurpose, Role};
use crate::domain::ids::{ChallengeId, KeyId, SectionId, UserId};
use crate::domain::section::SectionState;
use crate::domain::time::Timestamp;
use crate::error::{AppError, AppResult, ErrorCode};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChallengeRequest {
    pub purpose: KeyPurpose,
}

/// A challenge to prove possession of a key with.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChallengeView {
    pub id: ChallengeId,
    pub purpose: KeyPurpose,
    /// The key's owner: the organisation for bidder keys, the user otherwise.
    pub owner: String,
    pub nonce: String,
    /// For X25519 keys: the server's ephemeral public key to answer against.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_public_key: Option<String>,
    pub expires_at: Timestamp,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterKey {
    pub challenge_id: ChallengeId,
    pub public_key: String,
    pub proof: String,
}

/// A registered public key.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct KeyView {
    pub id: KeyId,
    /// The organisation (bidder keys) or the user it belongs to.
    pub owner: String,
    pub purpose: KeyPurpose,
    pub algorithm: KeyAlgorithm,
    pub public_key: String,
    pub fingerprint: String,
    pub active: bool,
    pub created_at: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retired_at: Option<Timestamp>,
}

impl From<KeyRow> for KeyView {
    fn from(r: KeyRow) -> Self {
        let fingerprint = fingerprint(&r.public_key);
        Self {
            id: r.id,
            owner: r.owner_id,
            purpose: r.purpose,
            algorithm: r.algorithm,
            fingerprint,
            public_key: r.public_key,
            active: r.retired_at.is_none(),
            created_at: Timestamp::from_millis(r.created_at),
            retired_at: r.retired_at.map(Timestamp::from_millis),
        }
    }
}

/// First 16 hex digits of SHA-256 over the key bytes, grouped for reading aloud.
pub fn fingerprint(public_hex: &str) -> String {
    let bytes = crypto::from_hex(public_hex).unwrap_or_default();
    let h = crypto::sha256_hex(&bytes);
    h.as_bytes()[..16]
        .chunks(4)
        .map(|c| std::str::from_utf8(c).expect("hex is ascii"))
        .collect::<Vec<_>>()
        .join("-")
}

fn owner_for(actor: &Actor, purpose: KeyPurpose) -> AppResult<String> {
    actor.require(&[purpose.role()])?;
    Ok(if purpose.owned_by_org() {
        actor.org()?.to_string()
    } else {
        actor.user.id.to_string()
    })
}

pub async fn challenge(
    svc: &Services,
    actor: &Actor,
    req: ChallengeRequest,
) -> AppResult<ChallengeView> {
    let owner = owner_for(actor, req.purpose)?;
    let now = svc.now();
    let expires = now.plus(chrono::Duration::minutes(
        svc.config.rules.key_challenge_minutes,
    ));
    let (server_secret, server_public) = match req.purpose.algorithm() {
        KeyAlgorithm::X25519 => {
            let sk = x25519::SecretKey::generate();
            (
                Some(hex::encode(*sk.to_bytes())),
                Some(hex::encode(sk.public_key())),
            )
        }
        KeyAlgorithm::Ed25519 => (None, None),
    };
    let row = ChallengeRow {
        id: ChallengeId::new(),
        user_id: actor.user.id.clone(),
        purpose: req.purpose,
        nonce: hex::encode(crypto::random_bytes::<32>()),
        server_secret,
        created_at: now.millis(),
        expires_at: expires.millis(),
        used_at: None,
    };
    let view = ChallengeView {
        id: row.id.clone(),
        purpose: req.purpose,
        owner,
        nonce: row.nonce.clone(),
        server_public_key: server_public,
        expires_at: expires,
    };
    svc.db
        .write(move |c| {
            repo::delete_expired_challenges(c, now.millis())?;
            repo::insert_challenge(c, &row)?;
            Ok(())
        })
        .await?;
    Ok(view)
}

pub async fn register(svc: &Services, actor: &Actor, req: RegisterKey) -> AppResult<KeyView> {
    let now = svc.now().millis();
    let who = actor.who();
    let actor = actor.clone();
    let svc2 = svc.clone();
    svc.db
        .write(move |c| {
            let svc = &svc2;
            let invalid = |m: &str| AppError::new(ErrorCode::ChallengeInvalid, m.to_string());
            let ch = repo::find_challenge(c, &req.challenge_id)?
                .filter(|ch| ch.user_id == actor.user.id)
                .ok_or_else(|| invalid("unknown challenge; ask for a new one"))?;
            if ch.used_at.is_some() {
                return Err(invalid("this challenge was already used; ask for a new one"));
            }
            if ch.expires_at <= now {
                return Err(invalid("this challenge has expired; ask for a new one"));
            }
            let purpose = ch.purpose;
            let owner = owner_for(&actor, purpose)?;
            let public_key = req.public_key.trim().to_string();
            let statement = Statement {
                challenge: &ch.nonce,
                challenge_id: ch.id.as_str(),
                owner: &owner,
                public_key: &public_key,
                purpose: purpose.as_str(),
            };
            let proof_ok = match purpose.algorithm() {
                KeyAlgorithm::Ed25519 => {
                    let key = sign::parse_public(&public_key)
                        .map_err(|e| AppError::new(ErrorCode::KeyRejected, e.to_string()))?;
                    statement.verify_ed25519(&key, &req.proof)
                }
                KeyAlgorithm::X25519 => {
                    let client = x25519::parse_public(&public_key)
                        .map_err(|e| AppError::new(ErrorCode::KeyRejected, e.to_string()))?;
                    let secret: [u8; 32] = ch
                        .server_secret
                        .as_deref()
                        .and_then(crypto::hex_array)
                        .ok_or_else(|| AppError::internal(anyhow::anyhow!("x25519 challenge without secret")))?;
                    let server = x25519::SecretKey::from_bytes(secret);
                    if server.diffie_hellman(&client).is_err() {
                        return Err(AppError::new(ErrorCode::KeyRejected, "X25519 key refused (small-order point)"));
                    }
                    statement.verify_x25519(&server, &client, &req.proof)
                }
            };
            if !proof_ok {
                return Err(AppError::new(
                    ErrorCode::ProofInvalid,
                    "the proof does not verify: sign the challenge statement with the key being registered",
                ));
            }
            if repo::use_challenge(c, &ch.id, now)? != 1 {
                return Err(invalid("this challenge was already used; ask for a new one"));
            }
            if repo::key_by_public(c, purpose.algorithm(), &public_key)?.is_some() {
                return Err(AppError::new(ErrorCode::KeyRejected, "this key is already registered"));
            }
            let proof_statement =
                String::from_utf8(statement.canonical()).map_err(AppError::internal)?;
            let previous = repo::active_key(c, &owner, purpose)?;
            if let Some(prev) = &previous {
                // A key registered before the log took keys has no leaf to retire.
                let idx = match &prev.proof_statement {
                    Some(st) => Some(log_key(svc, c, "key.retired", st, now)?),
                    None => None,
                };
                repo::retire_key(c, &prev.id, now, idx)?;
            }
            let registered_idx = Some(log_key(svc, c, "key.registered", &proof_statement, now)?);
            let row = KeyRow {
                id: KeyId::new(),
                owner_id: owner.clone(),
                purpose,
                algorithm: purpose.algorithm(),
                public_key,
                registered_by: actor.user.id.clone(),
                created_at: now,
                retired_at: None,
                proof_statement: Some(proof_statement),
                proof: Some(req.proof.clone()),
                registered_idx,
                retired_idx: None,
            };
            repo::insert_key(c, &row).map_err(|e| {
                if is_unique_violation(&e) {
                    AppError::new(ErrorCode::KeyRejected, "this key is already registered")
                } else {
                    e.into()
                }
            })?;
            audit::record(
                c,
                now,
                &who,
                if previous.is_some() { "key.rotate" } else { "key.register" },
                &owner,
                &json!({"key": row.id, "purpose": row.purpose, "replaces": previous.map(|p| p.id)}),
            )?;
            Ok(KeyView::from(row))
        })
        .await
}

/// Logs a key's registration or retirement (`kind`): a leaf naming only
/// the hash of its registration statement and the time, in no section's
/// chain (PROTOCOL §2.1). Returns its index; the checkpoint is signed with it.
fn log_key(
    svc: &Services,
    c: &mut crate::db::DbConn,
    kind: &'static str,
    statement: &str,
    now: i64,
) -> AppResult<i64> {
    let leaf = json!({
        "type": kind,
        "statement_hash": crypto::sha256_hex(statement.as_bytes()),
        "at_ms": now,
    });
    let (idx, _) = super::translog::put_leaf(svc, c, &leaf, kind, None, now)?;
    super::translog::sign_checkpoint(svc, c, now)?;
    Ok(idx as i64)
}

/// The caller's keys (their organisation's, for bidders), newest first.
pub async fn list_mine(svc: &Services, actor: &Actor) -> AppResult<Vec<KeyView>> {
    let owner = if actor.user.role == Role::Bidder {
        actor.org()?.to_string()
    } else {
        actor.user.id.to_string()
    };
    svc.db
        .run(move |c| {
            Ok(repo::key_history(c, &owner)?
                .into_iter()
                .map(Into::into)
                .collect())
        })
        .await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SectionKeyRequest {
    /// The custodian's per-section X25519 public key, hex.
    pub public_key: String,
    /// Ed25519 signature by the custodian's identity key over the statement.
    pub signature: String,
}

/// A custodian's registered key for one section.
#[derive(Debug, Serialize, ToSchema)]
pub struct SectionKeyView {
    pub section_id: SectionId,
    pub custodian: UserId,
    pub public_key: String,
    pub identity_key_id: KeyId,
    pub signature: String,
    pub registered_at: Timestamp,
}

impl From<SectionKeyRow> for SectionKeyView {
    fn from(r: SectionKeyRow) -> Self {
        Self {
            section_id: r.section_id,
            custodian: r.user_id,
            public_key: r.public_key,
            identity_key_id: r.identity_key_id,
            signature: r.signature,
            registered_at: Timestamp::from_millis(r.registered_at),
        }
    }
}

/// A named custodian registers its X25519 key for one section, before the
/// section is published.
pub async fn register_section_key(
    svc: &Services,
    actor: &Actor,
    section_id: SectionId,
    req: SectionKeyRequest,
) -> AppResult<SectionKeyView> {
    actor.require(&[Role::Custodian])?;
    let uid = actor.user.id.clone();
    transact(svc, actor.who(), move |tx| {
        let section = sections_repo::find_section(tx.c, &section_id)?
            .ok_or_else(|| AppError::not_found("section"))?;
        if !sections_repo::is_custodian(tx.c, &section_id, &uid)? {
            return Err(AppError::not_found("section"));
        }
        if section.state != SectionState::Draft {
            return Err(AppError::new(
                ErrorCode::SectionNotDraft,
                "custodian keys are registered before publication",
            ));
        }
        let identity = repo::active_key(tx.c, uid.as_str(), KeyPurpose::CustodianIdentity)?
            .ok_or_else(|| {
                AppError::new(
                    ErrorCode::KeyRejected,
                    "register your custodian identity key first",
                )
            })?;
        let public_key = req.public_key.trim().to_string();
        let client = x25519::parse_public(&public_key)
            .map_err(|e| AppError::new(ErrorCode::KeyRejected, e.to_string()))?;
        if x25519::SecretKey::generate()
            .diffie_hellman(&client)
            .is_err()
        {
            return Err(AppError::new(
                ErrorCode::KeyRejected,
                "X25519 key refused (small-order point)",
            ));
        }
        let statement = SectionKeyStatement {
            custodian: uid.as_str(),
            identity_key: &identity.public_key,
            public_key: &public_key,
            section_id: section_id.as_str(),
        };
        if !statement.verify(&req.signature) {
            return Err(AppError::new(
                ErrorCode::ProofInvalid,
                "the signature does not verify with your registered identity key",
            ));
        }
        let row = SectionKeyRow {
            section_id: section_id.clone(),
            user_id: uid.clone(),
            public_key,
            identity_key_id: identity.id.clone(),
            signature: req.signature.trim().to_string(),
            registered_at: tx.now,
        };
        repo::put_section_key(tx.c, &row)?;
        // The log names the statement "custodian.key"; the room, the event.
        let leaf = json!({
            "type": "custodian.key", "section_id": section_id, "custodian": uid,
            "identity_key": identity.public_key, "public_key": row.public_key,
            "signature": row.signature, "at_ms": tx.now,
        });
        super::translog::append(
            tx.svc,
            tx.c,
            &leaf,
            "custodian.key",
            super::translog::Scope::Section(&section_id),
            tx.now,
        )?;
        tx.record(
            Change::new(&section_id, "custodian.key_registered")
                .data(json!({"custodian": uid, "public_key": row.public_key}))
                .audited_as("section.custodian_key", json!({})),
        )?;
        Ok(row.into())
    })
    .await
}
