//! Exports a sealed section's transcript (see `crate::transcript`).

use std::collections::BTreeSet;

use super::Services;
use crate::crypto::envelope::SignedEnvelope;
use crate::crypto::translog::{self as fmt, Checkpoint, SignedCheckpoint};
use crate::db::{
    bids as bids_repo, keys as keys_repo, sections as sections_repo, translog as log_repo,
};
use crate::error::{AppError, AppResult};
use crate::transcript::{
    BidEntry, BidderKey, LateEntry, LogEntry, LogExtract, OpeningEntry, ParamsVersion, Transcript,
    WithdrawalEntry, FORMAT,
};

/// The transcript of a sealed section, with log proofs against the latest
/// checkpoint. Refused before the manifest exists (nothing is public yet).
pub async fn export(svc: &Services, section_id: String) -> AppResult<Transcript> {
    let now = svc.now().millis();
    let platform_key = svc.platform_public_hex();
    svc.db
        .run(move |c| {
            let manifest = bids_repo::manifest(c, &section_id)?
                .ok_or_else(|| AppError::not_found("transcript (the section is not sealed yet)"))?;
            let params = sections_repo::params_versions(c, &section_id)?
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
                    status: b.status,
                    received_at_ms: b.received_at,
                    completed_at_ms: b.completed_at,
                    withdrawal,
                });
            }
            let mut bidder_keys = Vec::new();
            for org in &bidders {
                for k in keys_repo::key_history(c, org)? {
                    bidder_keys.push(BidderKey {
                        bidder: org.clone(),
                        purpose: k.purpose,
                        public_key: k.public_key,
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
                    bidder: l.bidder,
                    envelope_hash: l.envelope_hash,
                    stage: l.stage,
                    at_ms: l.at,
                    index: l.log_idx as u64,
                })
                .collect();
            let cp =
                log_repo::latest_checkpoint(c)?.ok_or_else(|| AppError::not_found("checkpoint"))?;
            let mut indices: BTreeSet<i64> = log_repo::section_leaves(c, &section_id)?
                .iter()
                .map(|l| l.idx)
                .collect();
            indices.extend(openings.iter().map(|o| o.index as i64));
            let mut entries = Vec::new();
            for idx in indices {
                let leaf = log_repo::leaf(c, idx)?
                    .ok_or_else(|| AppError::internal(anyhow::anyhow!("missing leaf {idx}")))?;
                entries.push(LogEntry {
                    index: idx as u64,
                    leaf: serde_json::from_str(&leaf.leaf).map_err(AppError::internal)?,
                    proof: super::translog::inclusion_in(c, idx as u64, cp.size as u64)?,
                });
            }
            Ok(Transcript {
                format: FORMAT.into(),
                section_id,
                exported_at_ms: now,
                platform_key,
                params,
                bidder_keys,
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
                    entries,
                },
            })
        })
        .await
}
