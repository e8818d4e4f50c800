//! Exports a sealed section's transcript (`kaibiao-transcript/5`, see
//! `crate::transcript`): everything public about it, with the log proofs, the
//! opening's keys and results once announced, and the evaluation's record
//! once its result is published.

use std::collections::BTreeSet;

use super::{evaluation, Services};
use crate::crypto::envelope::{self, SignedEnvelope};
use crate::crypto::translog::{
    self as fmt, Checkpoint, SectionHead, SignedCheckpoint, SignedSectionHead,
};
use crate::db::{
    bids as bids_repo, evaluation as eval_repo, keys as keys_repo, opening as opening_repo,
    sections as sections_repo, translog as log_repo,
};
use crate::domain::ids::SectionId;
use crate::domain::states::OpeningStatus;
use crate::error::{AppError, AppResult};
use crate::evaluation::pass::Centre;
use crate::transcript::evaluation::CentreEntry;
use crate::transcript::opening::{OpenedBid, OpeningExtract};
use crate::transcript::{
    BidEntry, BidderKey, LateEntry, LogEntry, LogExtract, OpeningEntry, ParamsVersion, StaffKey,
    Transcript, WithdrawalEntry, FORMAT,
};

/// The transcript of a sealed section, with log proofs against the latest
/// checkpoint. Refused before the manifest exists (nothing is public yet).
pub async fn export(svc: &Services, section_id: SectionId) -> AppResult<Transcript> {
    let now = svc.now().millis();
    let platform_key = svc.platform_public_hex();
    let (atrest, blobs) = (svc.atrest.clone(), svc.blobs.clone());
    let signer = svc.platform_key.clone();
    svc.db
        .run(move |c| {
            // Everything is exported as of this checkpoint: a key or leaf
            // logged after it is not in the transcript.
            let cp =
                log_repo::latest_checkpoint(c)?.ok_or_else(|| AppError::not_found("checkpoint"))?;
            let cp_size = cp.size;
            let manifest = bids_repo::manifest(c, &section_id)?
                .ok_or_else(|| AppError::not_found("transcript (the section is not sealed yet)"))?;
            let params: Vec<ParamsVersion> = sections_repo::params_versions(c, &section_id)?
                .into_iter()
                .map(
                    |(version, params_json, params_hash, published_at_ms)| ParamsVersion {
                        version,
                        params_json,
                        params_hash,
                        published_at_ms,
                    },
                )
                .collect();
            let latest_params = params
                .last()
                .map(|p| p.params_json.clone())
                .unwrap_or_default();
            let latest_params = latest_params.as_str();
            let bid_rows = bids_repo::bids_of(c, &section_id)?;
            let mut bids = Vec::new();
            let mut bidders = BTreeSet::new();
            for b in bid_rows {
                bidders.insert(b.bidder.clone());
                let withdrawal = match &b.withdrawal {
                    Some(w) => {
                        let v: serde_json::Value =
                            serde_json::from_str(w).map_err(AppError::internal)?;
                        Some(WithdrawalEntry {
                            statement: serde_json::from_value(v["statement"].clone())
                                .map_err(AppError::internal)?,
                            receipt: serde_json::from_value(v["receipt"].clone())
                                .map_err(AppError::internal)?,
                        })
                    }
                    None => None,
                };
                bids.push(BidEntry {
                    signed_envelope: serde_json::from_str::<SignedEnvelope>(&b.signed_envelope)
                        .map_err(AppError::internal)?,
                    receipt: b
                        .receipt
                        .as_deref()
                        .map(serde_json::from_str)
                        .transpose()
                        .map_err(AppError::internal)?,
                    envelope_hash: b.envelope_hash,
                    status: b.status.to_string(),
                    received_at_ms: b.received_at,
                    completed_at_ms: b.completed_at,
                    withdrawal,
                });
            }
            let mut bidder_keys = Vec::new();
            for org in &bidders {
                for k in keys_repo::key_history(c, org.as_str())? {
                    let Some((registered, retired)) = key_leaves(c, &k, cp_size)? else {
                        continue;
                    };
                    bidder_keys.push(BidderKey {
                        bidder: org.to_string(),
                        purpose: k.purpose.to_string(),
                        public_key: k.public_key,
                        registered_at_ms: k.created_at,
                        retired_at_ms: retired.as_ref().and(k.retired_at),
                        statement: k.proof_statement.unwrap_or_default(),
                        proof: k.proof.unwrap_or_default(),
                        registered,
                        retired,
                    });
                }
            }
            let openings: Vec<OpeningEntry> = bids_repo::openings_of(c, &section_id)?
                .into_iter()
                .map(|(idx, o)| {
                    Ok(OpeningEntry {
                        index: idx as u64,
                        opening: serde_json::from_str(&o).map_err(AppError::internal)?,
                    })
                })
                .collect::<AppResult<_>>()?;
            let late_attempts: Vec<LateEntry> = bids_repo::late_of(c, &section_id)?
                .into_iter()
                .map(|l| LateEntry {
                    bidder: l.bidder.to_string(),
                    envelope_hash: l.envelope_hash,
                    stage: l.stage.to_string(),
                    at_ms: l.at,
                    index: l.log_idx as u64,
                })
                .collect();
            let mut indices: BTreeSet<i64> = log_repo::section_leaves(c, &section_id)?
                .iter()
                .map(|l| l.idx)
                .collect();
            indices.extend(openings.iter().map(|o| o.index as i64));
            let mut entries = Vec::new();
            for idx in indices.into_iter().filter(|i| *i < cp.size) {
                let leaf = log_repo::leaf(c, idx)?
                    .ok_or_else(|| AppError::internal(anyhow::anyhow!("missing leaf {idx}")))?;
                entries.push(LogEntry {
                    index: idx as u64,
                    leaf: serde_json::from_str(&leaf.leaf).map_err(AppError::internal)?,
                    proof: super::translog::inclusion_in(c, idx as u64, cp.size as u64)?,
                });
            }
            // The head closes the chain at the checkpoint (ADR 8). The
            // platform signs only a chain it has walked itself: a transcript
            // that would miss a leaf is never exported.
            let chain = fmt::check_chain(
                &atrest.chain_key(section_id.as_str()),
                entries.iter().map(|e| (e.index, &e.leaf)),
            )
            .map_err(|e| AppError::internal(anyhow::anyhow!("section {section_id}: {e}")))?;
            let head = SignedSectionHead::sign(
                SectionHead {
                    format: fmt::HEAD_FORMAT.into(),
                    section_id: section_id.to_string(),
                    seq: chain.seq,
                    head: hex::encode(chain.prev),
                    index: chain.index,
                    log_size: cp.size as u64,
                },
                &signer,
            );
            let staff_keys = staff_keys(c, &entries, latest_params, cp_size)?;
            let opening = opening_extract(c, &atrest, &blobs, &section_id)?;
            let evaluation = evaluation_extract(c, &atrest, &entries, cp_size, &section_id)?;
            Ok(Transcript {
                opening,
                evaluation,
                format: FORMAT.into(),
                section_id: section_id.to_string(),
                exported_at_ms: now,
                platform_key,
                params,
                bidder_keys,
                staff_keys,
                bids,
                openings,
                late_attempts,
                manifest: serde_json::from_str(&manifest.manifest).map_err(AppError::internal)?,
                log: LogExtract {
                    checkpoint: SignedCheckpoint {
                        checkpoint: Checkpoint {
                            log: fmt::LOG_NAME.into(),
                            size: cp.size as u64,
                            root: cp.root,
                            at_ms: cp.at,
                        },
                        signature: cp.signature,
                    },
                    head,
                    entries,
                },
            })
        })
        .await
}

/// The opening's material, once the record is announced (before that the
/// keys and results are secret, and there is nothing to add).
fn opening_extract(
    c: &mut crate::db::DbConn,
    atrest: &crate::crypto::atrest::AtRest,
    blobs: &crate::storage::BlobStore,
    section_id: &SectionId,
) -> AppResult<Option<OpeningExtract>> {
    let Some(o) = opening_repo::find(c, section_id)? else {
        return Ok(None);
    };
    if o.announced_at.is_none() {
        return Ok(None);
    }
    let key_releases = opening_repo::releases_of(c, section_id)?
        .into_iter()
        .map(|r| {
            let text = r
                .secret_key
                .ok_or_else(|| AppError::internal(anyhow::anyhow!("a release left unpublished")))?;
            serde_json::from_str(&text).map_err(AppError::internal)
        })
        .collect::<AppResult<Vec<_>>>()?;
    let mut bids = Vec::new();
    for b in opening_repo::bid_openings_of(c, section_id)? {
        let Some(sealed) = b
            .bmk
            .as_deref()
            .filter(|_| b.status == OpeningStatus::Decrypted)
        else {
            continue;
        };
        let bmk = atrest
            .open(&format!("bmk/{}", b.envelope_hash), sealed)
            .map_err(AppError::internal)?;
        let row = bids_repo::bid(c, &b.envelope_hash)?
            .ok_or_else(|| AppError::internal(anyhow::anyhow!("bid row missing")))?;
        let env: SignedEnvelope =
            serde_json::from_str(&row.signed_envelope).map_err(AppError::internal)?;
        let (env, _) = envelope::parse_signed(&env).map_err(AppError::internal)?;
        let part = env
            .part(envelope::PART_SUMMARY)
            .ok_or_else(|| AppError::internal(anyhow::anyhow!("no summary part")))?;
        let path = blobs
            .path_of(&part.sha256)
            .ok_or_else(|| AppError::internal(anyhow::anyhow!("bad part hash")))?;
        // The summary is small (bounded by MAX_SUMMARY_BYTES at sealing).
        let ct = std::fs::read(path).map_err(AppError::internal)?;
        bids.push(OpenedBid {
            envelope_hash: b.envelope_hash,
            bmk: hex::encode(bmk.as_slice()),
            summary_ciphertext: hex::encode(ct),
        });
    }
    let closing = o
        .closing_json
        .as_deref()
        .map(serde_json::from_str)
        .transpose()
        .map_err(AppError::internal)?;
    Ok(Some(OpeningExtract {
        key_releases,
        bids,
        closing,
    }))
}

/// The evaluation's part of the transcript, once the result is published
/// (before that the committee is confidential: `None`).
fn evaluation_extract(
    c: &mut crate::db::DbConn,
    atrest: &crate::crypto::atrest::AtRest,
    entries: &[LogEntry],
    cp_size: i64,
    section_id: &SectionId,
) -> AppResult<Option<crate::transcript::evaluation::EvaluationExtract>> {
    use crate::transcript::evaluation::{
        ClarificationEntry, ContributionEntry, EvaluationExtract, ReportSignatureEntry, SeatEntry,
        SignedText,
    };
    let Some(ev) = eval_repo::find(c, section_id)?.filter(|e| e.published_at.is_some()) else {
        return Ok(None);
    };
    fn parse<T: serde::de::DeserializeOwned>(s: &str) -> AppResult<T> {
        serde_json::from_str(s).map_err(AppError::internal)
    }
    let seed = atrest
        .open(&evaluation::seed_label(section_id), &ev.sealed_seed)
        .map_err(AppError::internal)?;
    let req = eval_repo::draw_request(c, section_id)?
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("drawn without a request")))?;
    let platform_seed = atrest
        .open(
            &evaluation::platform_seed_label(section_id),
            &req.sealed_seed,
        )
        .map_err(AppError::internal)?;
    let seats = eval_repo::seats_of(c, section_id)?
        .into_iter()
        .map(|s| {
            Ok(SeatEntry {
                expert_id: s.expert_id.into_string(),
                specialty: s.specialty,
                status: s.status.to_string(),
                pass: s.pass_json.as_deref().map(parse).transpose()?,
            })
        })
        .collect::<AppResult<Vec<_>>>()?;
    Ok(Some(EvaluationExtract {
        request: parse(&ev.request_json)?,
        parties: parse(&ev.parties_json)?,
        snapshot: parse(&ev.snapshot_json)?,
        seed: hex::encode(&seed[..]),
        platform_seed: hex::encode(&platform_seed[..]),
        contributions: eval_repo::contributions_of(c, section_id)?
            .into_iter()
            .map(|r| ContributionEntry {
                party: r.party,
                key: r.public_key,
                commitment: SignedText {
                    statement: r.statement,
                    signature: r.signature,
                },
            })
            .collect(),
        draw: parse(&ev.draw_json)?,
        centres: centre_entries(c, entries, &parse(&ev.request_json)?, cp_size)?,
        seats,
        votes: eval_repo::votes_of(c, section_id)?
            .into_iter()
            .map(|v| SignedText {
                statement: v.statement,
                signature: v.signature,
            })
            .collect(),
        scores: eval_repo::scores_of(c, section_id)?
            .into_iter()
            .map(|v| SignedText {
                statement: v.statement,
                signature: v.signature,
            })
            .collect(),
        report: ev.report_json.unwrap_or_default(),
        report_signatures: eval_repo::report_signatures_of(c, section_id)?
            .into_iter()
            .map(|r| ReportSignatureEntry {
                expert_id: r.expert_id.into_string(),
                agree: r.agree,
                dissent: r.dissent,
                deemed: r.deemed,
                statement: r.statement,
                signature: r.signature,
            })
            .collect(),
        recusals: eval_repo::recusals_of(c, section_id)?
            .into_iter()
            .map(|r| SignedText {
                statement: r.statement,
                signature: r.signature,
            })
            .collect(),
        outlier_confirmations: eval_repo::outliers_of(c, section_id)?
            .into_iter()
            .filter_map(|o| {
                Some(SignedText {
                    statement: o.statement?,
                    signature: o.signature?,
                })
            })
            .collect(),
        clarifications: eval_repo::clarifications_of(c, section_id)?
            .into_iter()
            .map(|q| ClarificationEntry {
                id: q.id.to_string(),
                question: SignedText {
                    statement: q.statement,
                    signature: q.signature,
                },
                answer: q
                    .answer_statement
                    .zip(q.answer_signature)
                    .map(|(statement, signature)| SignedText {
                        statement,
                        signature,
                    }),
            })
            .collect(),
    }))
}

/// The identity-key histories of the staff who signed for the section: the
/// latest parameters' custodians, and every supervisor the log names as
/// countersigning the record or upholding an incident.
fn staff_keys(
    c: &mut crate::db::DbConn,
    entries: &[LogEntry],
    latest_params: &str,
    cp_size: i64,
) -> AppResult<Vec<StaffKey>> {
    let params: serde_json::Value =
        serde_json::from_str(latest_params).map_err(AppError::internal)?;
    let mut users: BTreeSet<(String, &'static str)> = BTreeSet::new();
    for cu in params["custodians"].as_array().into_iter().flatten() {
        if let Some(u) = cu["user_id"].as_str() {
            users.insert((u.to_string(), "custodian_identity"));
        }
    }
    for e in entries {
        let ty = e.leaf["type"].as_str().unwrap_or_default();
        if ty == "opening.countersigned" || ty == "opening.incident_countersigned" {
            if let Some(u) = e.leaf["supervisor"].as_str() {
                users.insert((u.to_string(), "supervisor_identity"));
            }
        }
    }
    let mut out = Vec::new();
    for (user, purpose) in users {
        for k in keys_repo::key_history(c, &user)? {
            if k.purpose.as_str() != purpose {
                continue;
            }
            let Some((registered, retired)) = key_leaves(c, &k, cp_size)? else {
                continue;
            };
            out.push(StaffKey {
                user: user.clone(),
                purpose: purpose.to_string(),
                public_key: k.public_key,
                registered_at_ms: k.created_at,
                retired_at_ms: retired.as_ref().and(k.retired_at),
                statement: k.proof_statement.unwrap_or_default(),
                proof: k.proof.unwrap_or_default(),
                registered,
                retired,
            });
        }
    }
    Ok(out)
}

/// The registration of every centre the draw drew from (and the host's):
/// each centre's latest registration logged before the draw was asked for
/// (the one whose key it signed with then), with its leaf.
fn centre_entries(
    c: &mut crate::db::DbConn,
    entries: &[LogEntry],
    request: &crate::evaluation::draw::DrawRequest,
    cp_size: i64,
) -> AppResult<Vec<CentreEntry>> {
    let requested = entries
        .iter()
        .find(|e| e.leaf["type"] == "evaluation.draw_requested")
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("drawn without a logged request")))?;
    let mut codes: BTreeSet<&str> = request.centres.iter().map(String::as_str).collect();
    if let Some(host) = requested.leaf["host_centre"].as_str() {
        codes.insert(host);
    }
    let mut out = Vec::new();
    for code in codes {
        let r = eval_repo::centre_registered_before(c, code, requested.index as i64)?.ok_or_else(
            || {
                AppError::internal(anyhow::anyhow!(
                    "centre {code} was drawn from without a logged registration"
                ))
            },
        )?;
        out.push(CentreEntry {
            centre: Centre {
                format: crate::evaluation::pass::CENTRE_FORMAT.into(),
                code: r.code,
                name: r.name,
                public_key: r.public_key,
                signature: r.signature,
            },
            registered: log_entry(c, r.idx, cp_size)?,
        });
    }
    Ok(out)
}

/// Leaf `idx` with its inclusion proof under the checkpoint of size
/// `cp_size`.
fn log_entry(c: &mut crate::db::DbConn, idx: i64, cp_size: i64) -> AppResult<LogEntry> {
    let leaf = log_repo::leaf(c, idx)?
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("missing leaf {idx}")))?;
    Ok(LogEntry {
        index: idx as u64,
        leaf: serde_json::from_str(&leaf.leaf).map_err(AppError::internal)?,
        proof: super::translog::inclusion_in(c, idx as u64, cp_size as u64)?,
    })
}

/// A key's registration leaf and, if it was retired by then, its
/// retirement leaf, each with its inclusion proof under the checkpoint of
/// size `cp_size`; `None` for a key registered after that checkpoint.
fn key_leaves(
    c: &mut crate::db::DbConn,
    k: &keys_repo::KeyRow,
    cp_size: i64,
) -> AppResult<Option<(LogEntry, Option<LogEntry>)>> {
    let registered = k.registered_idx.ok_or_else(|| {
        AppError::internal(anyhow::anyhow!(
            "key {} was registered before keys were logged",
            k.id
        ))
    })?;
    if registered >= cp_size {
        return Ok(None);
    }
    let retired = match k.retired_idx.filter(|i| *i < cp_size) {
        Some(idx) => Some(log_entry(c, idx, cp_size)?),
        None => None,
    };
    Ok(Some((log_entry(c, registered, cp_size)?, retired)))
}
