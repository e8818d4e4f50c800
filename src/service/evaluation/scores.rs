//! Scores: each for one item of one qualified bid, each signed by a sitting
//! member with the key of its pass. Writes go through [`ScoreWriter`]:
//! whoever finds the writer idle commits everything queued meanwhile in one
//! transaction (group commit), so a burst of scores costs one durable
//! commit, not one each. Each request is still checked on its own, all or
//! nothing, and answered only after its commit.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::review::qualified_bids;
use super::statements::{verified, Signed};
use super::{by_expert, drawn};
use crate::db::evaluation::{self as repo, ScoreRow};
use crate::db::{write_tx, DbConn};
use crate::domain::decimal::Points;
use crate::domain::evaluation::{EvaluationSpec, ItemKind};
use crate::domain::ids::{ExpertId, SectionId};
use crate::domain::states::{EvaluationPhase, SeatStatus};
use crate::error::{AppError, AppResult, ErrorCode};
use crate::evaluation::statements::{ScoreStatement, SCORE_LABEL};
use crate::service::action::{Change, Tx};
use crate::service::opening::load;
use crate::service::Services;

/// The most scores one request may carry (a bid's whole sheet).
pub const MAX_SHEET: usize = 500;

/// What a score request wrote.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ScoresRecorded {
    pub recorded: usize,
    /// Cells written now.
    pub new: usize,
    /// Cells that were written before with the same statement.
    pub repeats: usize,
}

/// One request's scores waiting for their group commit.
struct PendingScore {
    section_id: SectionId,
    sheet: Vec<Signed<ScoreStatement>>,
    now: i64,
    done: tokio::sync::oneshot::Sender<AppResult<ScoresRecorded>>,
}

/// Batches score writes (see the module's comment).
#[derive(Clone, Default)]
pub struct ScoreWriter {
    queue: Arc<std::sync::Mutex<Vec<PendingScore>>>,
    writing: Arc<tokio::sync::Mutex<()>>,
}

/// An expert's scores — one, or a sheet of up to [`MAX_SHEET`]. A cell is
/// written once: the same statement again is a repeat; another value is
/// refused, and then nothing of the request is written.
pub async fn score(
    svc: &Services,
    section_id: SectionId,
    sheet: Vec<Signed<ScoreStatement>>,
) -> AppResult<ScoresRecorded> {
    if sheet.is_empty() || sheet.len() > MAX_SHEET {
        return Err(AppError::invalid_field(
            "scores",
            format!("1 to {MAX_SHEET} scores per request"),
        ));
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    let w = svc.scores.clone();
    w.queue.lock().expect("score queue").push(PendingScore {
        section_id,
        sheet,
        now: svc.now().millis(),
        done: tx,
    });
    let mut rx = rx;
    {
        // Whoever holds the writer either finds its own request answered by
        // the batch before (and lets go at once), or commits everything
        // queued meanwhile — its own request included — as one batch.
        let _leader = w.writing.lock().await;
        match rx.try_recv() {
            Ok(answer) => return answer,
            Err(tokio::sync::oneshot::error::TryRecvError::Empty) => {
                let batch = std::mem::take(&mut *w.queue.lock().expect("score queue"));
                flush(svc, batch).await;
            }
            Err(tokio::sync::oneshot::error::TryRecvError::Closed) => {}
        }
    }
    rx.await
        .map_err(|_| AppError::internal(anyhow::anyhow!("score writer dropped a write")))?
}

type Checked = (PendingScore, AppResult<Vec<ScoreRow>>);

async fn flush(svc: &Services, batch: Vec<PendingScore>) {
    let s = svc.clone();
    let r = svc
        .db
        .run(move |c| {
            let mut items: Vec<Checked> = Vec::with_capacity(batch.len());
            let mut ctx: BTreeMap<SectionId, AppResult<ScoreCtx>> = BTreeMap::new();
            for p in batch {
                let cx = ctx
                    .entry(p.section_id.clone())
                    .or_insert_with(|| score_ctx(c, &p.section_id));
                let rows = match cx {
                    Ok(cx) => check_sheet(cx, &p),
                    Err(e) => Err(AppError::new(e.code, e.message.clone())),
                };
                items.push((p, rows));
            }
            // One transaction for the batch. A request refused inside it
            // (a cell scored already) writes nothing; any other failure (a
            // race with another node) falls back to one transaction each.
            let now = items.first().map_or(0, |(p, _)| p.now);
            let together = write_tx(c, |c| {
                let mut out = Vec::new();
                for (_, rows) in &items {
                    out.push(match rows {
                        Ok(r) => match store_sheet(c, r) {
                            Err(e) if e.code == ErrorCode::Conflict => Err(e),
                            other => Ok(Some(other?)),
                        },
                        Err(_) => Ok(None),
                    });
                }
                let sections: BTreeSet<&SectionId> = items
                    .iter()
                    .filter(|(_, r)| r.is_ok())
                    .map(|(p, _)| &p.section_id)
                    .collect();
                let mut tx = Tx::new(&s, c, now, by_expert());
                for sid in sections {
                    tx.record(Change::new(sid, "evaluation.scores_recorded"))?;
                }
                Ok(out)
            });
            Ok(match together {
                Ok(values) => items
                    .into_iter()
                    .zip(values)
                    .map(|((p, rows), v)| {
                        let answer = rows.and(v).and_then(|v| {
                            v.ok_or_else(|| {
                                AppError::internal(anyhow::anyhow!(
                                    "a checked sheet was not stored"
                                ))
                            })
                        });
                        (p.done, answer)
                    })
                    .collect::<Vec<_>>(),
                Err(_) => items
                    .into_iter()
                    .map(|(p, rows)| {
                        let r = rows.and_then(|r| write_tx(c, |c| store_sheet(c, &r)));
                        (p.done, r)
                    })
                    .collect(),
            })
        })
        .await;
    match r {
        Ok(answers) => {
            for (done, a) in answers {
                let _ = done.send(a);
            }
        }
        Err(e) => tracing::error!(error = %e.message, "score batch failed"),
    }
}

/// What checking a score needs, read once per section per batch.
struct ScoreCtx {
    section_id: SectionId,
    phase: EvaluationPhase,
    keys: BTreeMap<ExpertId, String>,
    qualified: BTreeSet<String>,
    spec: EvaluationSpec,
}

fn score_ctx(c: &mut DbConn, section_id: &SectionId) -> AppResult<ScoreCtx> {
    let x = load(c, section_id)?;
    let ev = drawn(c, section_id)?;
    let keys = repo::seats_of(c, section_id)?
        .into_iter()
        .filter(|s| s.status == SeatStatus::Confirmed)
        .filter_map(|s| s.expert_key.map(|k| (s.expert_id, k)))
        .collect();
    Ok(ScoreCtx {
        section_id: section_id.clone(),
        qualified: qualified_bids(&ev)?
            .unwrap_or_default()
            .into_iter()
            .collect(),
        phase: ev.phase,
        keys,
        spec: x.params.evaluation,
    })
}

fn check_score(cx: &ScoreCtx, one: &Signed<ScoreStatement>, now: i64) -> AppResult<ScoreRow> {
    let st = &one.statement;
    if st.section_id != cx.section_id.as_str() {
        return Err(AppError::invalid_field(
            "statement.section_id",
            "another section",
        ));
    }
    let expert = ExpertId::from_db(st.expert_id.clone());
    let key = cx.keys.get(&expert).ok_or_else(|| {
        AppError::new(
            ErrorCode::PassRejected,
            "the statement names no admitted member of this committee",
        )
    })?;
    let text = verified(key, SCORE_LABEL, st, &one.signature)?;
    if cx.phase != EvaluationPhase::Scoring {
        return Err(AppError::new(
            ErrorCode::InvalidTransition,
            format!("scores are not taken while the evaluation is {}", cx.phase),
        ));
    }
    if !cx.qualified.contains(&st.bid) {
        return Err(AppError::invalid_field(
            "statement.bid",
            "not a qualified bid of this section",
        ));
    }
    let item = cx
        .spec
        .items
        .iter()
        .find(|i| i.id == st.item && i.kind != ItemKind::Price)
        .ok_or_else(|| {
            AppError::invalid_field(
                "statement.item",
                "not an item the experts score (the price score is computed)",
            )
        })?;
    if st.points < Points::ZERO || st.points > item.max_points {
        return Err(AppError::invalid_field(
            "statement.points",
            format!("must lie between 0 and {}", item.max_points),
        ));
    }
    Ok(ScoreRow {
        section_id: cx.section_id.clone(),
        expert_id: expert,
        bid: st.bid.clone(),
        item: st.item.clone(),
        points: st.points.units(),
        statement: text,
        signature: one.signature.clone(),
        at: now,
    })
}

fn check_sheet(cx: &ScoreCtx, p: &PendingScore) -> AppResult<Vec<ScoreRow>> {
    let mut cells = BTreeSet::new();
    let mut rows = Vec::with_capacity(p.sheet.len());
    for (i, one) in p.sheet.iter().enumerate() {
        let st = &one.statement;
        if !cells.insert((st.expert_id.as_str(), st.bid.as_str(), st.item.as_str())) {
            return Err(AppError::invalid_field(
                &format!("scores[{i}]"),
                "the same cell twice in one request",
            ));
        }
        rows.push(check_score(cx, one, p.now).map_err(|mut e| {
            if p.sheet.len() > 1 {
                e.message = format!("scores[{i}]: {}", e.message);
            }
            e
        })?);
    }
    Ok(rows)
}

/// Writes a request's cells, or none of them when one was scored already
/// with another value.
fn store_sheet(c: &mut DbConn, rows: &[ScoreRow]) -> AppResult<ScoresRecorded> {
    let mut fresh = Vec::new();
    for r in rows {
        match repo::score_cell(c, &r.section_id, &r.expert_id, &r.bid, &r.item)? {
            Some(prev) if prev.statement == r.statement => {}
            Some(_) => {
                return Err(AppError::new(
                    ErrorCode::Conflict,
                    format!(
                        "expert {} has scored {} of this bid already with another value",
                        r.expert_id, r.item
                    ),
                ))
            }
            None => fresh.push(r),
        }
    }
    for r in &fresh {
        repo::insert_score(c, r)?;
    }
    Ok(ScoresRecorded {
        recorded: rows.len(),
        new: fresh.len(),
        repeats: rows.len() - fresh.len(),
    })
}
