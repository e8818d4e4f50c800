//! The chronograph: a durable scheduler that performs every timed transition
//! (the bid deadline first). Jobs live in the `jobs` table, written in the
//! same transaction as the change that schedules them, so nothing is lost
//! across restarts: at start the chronograph performs everything that fell
//! due while it was down. Several nodes may run it against one database;
//! each transition is a compare-and-set, so exactly one node performs it.

use std::time::Duration;

use crate::clock::sleep_until;
use crate::db::jobs;
use crate::domain::time::Timestamp;
use crate::service::schedule::{run_job, Outcome};
use crate::service::Services;

/// Runs until `shutdown` fires.
pub async fn run(svc: Services, node: String, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let poll = Duration::from_millis(svc.config.chronograph.poll_interval_ms);
    tracing::info!(node, "chronograph started");
    loop {
        if *shutdown.borrow() {
            break;
        }
        let next = match tick(&svc, &node).await {
            Ok(next) => next,
            Err(e) => {
                tracing::error!(error = %e, "chronograph tick failed");
                None
            }
        };
        let wake_at = next.unwrap_or_else(|| svc.now().plus(chrono::Duration::days(365)));
        let wake = svc.chronograph_wake.notified();
        tokio::select! {
            _ = sleep_until(svc.clock.as_ref(), wake_at, poll) => {}
            _ = wake => {}
            _ = shutdown.changed() => {}
        }
    }
    tracing::info!(node, "chronograph stopped");
}

/// Performs the log's flush if one is due (ADR 9) and every due job once;
/// returns when the next of either is due.
pub async fn tick(svc: &Services, node: &str) -> crate::error::AppResult<Option<Timestamp>> {
    let flush = match crate::service::bids::flush_due(svc).await {
        Ok(next) => next,
        Err(e) => {
            svc.metrics.inc(
                "kaibiao_chronograph_failures_total",
                &[("kind", "log.flush")],
            );
            tracing::error!(error = ?e.source, code = e.code.as_str(), "the log's flush failed; will retry");
            Some(svc.now().millis() + 5_000)
        }
    };
    loop {
        let now = svc.now().millis();
        let due = svc.db.run(move |c| Ok(jobs::due(c, now, 100)?)).await?;
        if due.is_empty() {
            break;
        }
        let mut progressed = false;
        for job in due {
            let (kind, section) = (job.kind.as_str(), job.section_id.clone());
            match run_job(svc, job.clone(), node.to_string()).await {
                Ok(Outcome::Performed) => {
                    progressed = true;
                    svc.metrics
                        .inc("kaibiao_chronograph_transitions_total", &[("kind", kind)]);
                    tracing::info!(kind, %section, "transition performed");
                }
                Ok(Outcome::Settled) => progressed = true,
                Ok(Outcome::NotDue) => {}
                Err(e) => {
                    svc.metrics
                        .inc("kaibiao_chronograph_failures_total", &[("kind", kind)]);
                    tracing::error!(kind, %section, error = ?e.source, code = e.code.as_str(), "transition failed; will retry");
                    let retry = svc.now().millis() + 5_000 * (1 << job.attempts.clamp(0, 8));
                    let msg = e.to_string();
                    let id = job.id.clone();
                    svc.db
                        .run(move |c| Ok(jobs::fail(c, &id, &msg, retry)?))
                        .await?;
                }
            }
        }
        if !progressed {
            break;
        }
    }
    let now = svc.now().millis();
    let next = svc.db.run(move |c| Ok(jobs::next_due(c, now)?)).await?;
    let next = match (next, flush) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    Ok(next.map(Timestamp::from_millis))
}
