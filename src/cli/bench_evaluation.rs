//! `kaibiao bench scores`: durable score writes per second (DESIGN §10:
//! at least 5,000 on SQLite, without "database is locked").
//!
//! A real platform (SQLite, `synchronous=FULL`, WAL) with a section whose
//! committee is seated and scoring. The state *before* scoring — the opening
//! record's bids, the committee, the qualification — is written straight to
//! the database (the opening and the draw have their own benchmarks and
//! tests); every score then goes through the real endpoint over HTTP: the
//! expert's Ed25519 signature checked, the item's range, the cell written
//! once, and the answer sent only after the commit. The baseline in the same
//! run is one single-row commit per write with the same pragmas on the same
//! disk.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::Connection;
use serde_json::{json, Value};

use super::bench::{platform_with, work_dir};
use crate::client::Client;
use crate::clock::{Clock, SystemClock};
use crate::crypto::sign;
use crate::db::evaluation::{self as repo, EvaluationRow, ExpertRow, SeatRow};
use crate::db::{opening as opening_repo, sections as sections_repo};
use crate::domain::decimal::Points;
use crate::domain::ids::ExpertId;
use crate::domain::section::SectionState;
use crate::domain::states::{EvaluationPhase, SeatStatus};
use crate::service::evaluation::{sign_statement, ScoreStatement, Signed, SCORE_LABEL};

fn spec(items: usize) -> Value {
    // A price item of 40 points and `items` technical items sharing 60.
    let each = 6_000 / items as i64;
    let mut v = vec![json!({"id": "price", "name": "price", "kind": "price", "max_points": "40"})];
    for i in 0..items {
        let p = if i + 1 == items {
            6_000 - each * (items as i64 - 1)
        } else {
            each
        };
        v.push(
            json!({"id": format!("t{i}"), "name": format!("item {i}"), "kind": "technical",
                      "max_points": Points::from_hundredths(p).to_string()}),
        );
    }
    json!({"method": "comprehensive", "items": v,
           "price": {"benchmark": "lowest", "deduct_above_per_pct": "1", "deduct_below_per_pct": "0"}})
}

/// Puts the section straight into `scoring`: `bids` announced bids, all
/// qualified, and `experts` admitted members with their keys.
async fn seat_panel(
    b: &super::bench::Bench,
    experts: usize,
    bids: usize,
) -> anyhow::Result<(Vec<String>, Vec<(String, ed25519_dalek::SigningKey)>)> {
    let sid = crate::domain::ids::SectionId::from_db(b.section.clone());
    let keys: Vec<(String, ed25519_dalek::SigningKey)> = (0..experts)
        .map(|i| (format!("BENCH-X{i}"), sign::generate()))
        .collect();
    let bid_ids: Vec<String> = (0..bids).map(|i| format!("{:064x}", i + 1)).collect();
    let now = SystemClock.now().millis();
    let (k2, ids2) = (keys.clone(), bid_ids.clone());
    b.sandbox
        .services
        .db
        .write(move |c| {
            sections_repo::cas_state(c, &sid, SectionState::Published, SectionState::Evaluating, now)?;
            let mut o = opening_repo::get_or_create(c, &sid)?;
            let record = json!({"bids": ids2.iter().enumerate().map(|(i, h)| json!({
                "envelope_hash": h, "bidder": format!("org_bench_{i}"), "status": "decrypted",
                "summary": {"price": format!("{}.00", 1_000_000 + i)}})).collect::<Vec<_>>()});
            o.record_json = Some(record.to_string());
            opening_repo::save(c, &o)?;
            let mut seats = Vec::new();
            let mut rows = Vec::new();
            for (i, (id, k)) in k2.iter().enumerate() {
                rows.push(ExpertRow {
                    id: ExpertId::from_db(id.clone()),
                    centre: "HOST".into(),
                    name: format!("bench expert {i}"),
                    email: format!("x{i}@bench.example.cn"),
                    specialties: "[\"civil\"]".into(),
                    employer: "91110000000000001X".into(),
                    related_orgs: "[]".into(),
                    related_people: "[]".into(),
                    available: true,
                    updated_at: now,
                });
                seats.push(SeatRow {
                    section_id: sid.clone(),
                    expert_id: ExpertId::from_db(id.clone()),
                    specialty: "civil".into(),
                    position: i as i32,
                    status: SeatStatus::Confirmed,
                    token_hash: None,
                    expert_key: Some(hex::encode(k.verifying_key().as_bytes())),
                    pass_json: None,
                    called_at: Some(now),
                    responded_at: Some(now),
                });
            }
            repo::upsert_experts(c, &rows)?;
            let q: Vec<Value> = ids2
                .iter()
                .map(|h| json!({"bid": h, "passes": k2.len(), "fails": 0, "qualified": true, "reasons": []}))
                .collect();
            repo::insert(
                c,
                &EvaluationRow {
                    section_id: sid.clone(),
                    phase: EvaluationPhase::Scoring,
                    request_json: "{}".into(),
                    parties_json: "{}".into(),
                    snapshot_json: "{}".into(),
                    snapshot_hash: String::new(),
                    seed_commitment: String::new(),
                    sealed_seed: String::new(),
                    draw_json: "{}".into(),
                    k_coefficient: None,
                    outcome_json: Some(json!({"qualification": q}).to_string()),
                    report_json: None,
                report_hash: None,
                signing_ends_at: None,
                published_at: None,
                publicity_ends_at: None,
                paused_since: None,
                awarded_at: None,
                created_at: now,
                    updated_at: now,
                },
            )?;
            repo::insert_seats(c, &seats)?;
            Ok(())
        })
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.message))?;
    Ok((bid_ids, keys))
}

/// One single-row durable commit per write, same pragmas, same disk.
fn baseline(dir: &std::path::Path, writes: usize) -> anyhow::Result<f64> {
    let path = dir.join("baseline.sqlite");
    let mut c = diesel::SqliteConnection::establish(path.to_str().unwrap_or_default())?;
    c.batch_execute(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
         CREATE TABLE s (a TEXT, b TEXT, c TEXT, p BIGINT, st TEXT, sig TEXT, PRIMARY KEY (a, b, c));",
    )?;
    let sig = "ab".repeat(64);
    let t = Instant::now();
    for i in 0..writes {
        c.batch_execute(&format!(
            "BEGIN IMMEDIATE; INSERT INTO s VALUES ('x', 'b{i}', 't', 100, '{{\"points\":\"1.00\"}}', '{sig}'); COMMIT;"
        ))?;
    }
    Ok(writes as f64 / t.elapsed().as_secs_f64())
}

pub fn bench_scores(
    experts: usize,
    bids: usize,
    items: usize,
    concurrency: usize,
    dir: Option<PathBuf>,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        (5..=51).contains(&experts) && bids >= 1 && (1..=200).contains(&items) && concurrency >= 1,
        "--experts 5 to 51, --bids at least 1, --items 1 to 200, --concurrency at least 1"
    );
    let (_t, dir) = work_dir(dir)?;
    actix_web::rt::System::new().block_on(async move {
        let b = platform_with(
            &dir,
            0,
            chrono::Duration::days(30),
            1 << 20,
            Arc::new(SystemClock),
            spec(items),
        )
        .await?;
        let (bid_ids, keys) = seat_panel(&b, experts, bids).await?;
        let total = experts * bids * items;
        println!(
            "scores: {experts} experts × {bids} bids × {items} items = {total} writes, \
             {concurrency} in flight per expert, SQLite synchronous=FULL"
        );
        // Sign everything first: the experts' clients, not the server's cost.
        // The first half of the bids is scored one cell per request, the
        // second half one sheet (all items of a bid) per request.
        let path = format!("/api/sections/{}/evaluation/scores", b.section);
        let half = bids / 2;
        let (mut cells, mut sheets): (Vec<Vec<Value>>, Vec<Vec<Value>>) = (Vec::new(), Vec::new());
        for (id, k) in &keys {
            let (mut c1, mut s1) = (Vec::new(), Vec::new());
            for (j, bid) in bid_ids.iter().enumerate() {
                let mut sheet = Vec::new();
                for i in 0..items {
                    let st = ScoreStatement {
                        section_id: b.section.clone(),
                        expert_id: id.clone(),
                        bid: bid.clone(),
                        item: format!("t{i}"),
                        points: Points::from_hundredths(((i * 7) % 100) as i64),
                    };
                    let sig = sign_statement(k, SCORE_LABEL, &st);
                    sheet.push(serde_json::to_value(Signed { statement: st, signature: sig })?);
                }
                if j < half {
                    c1.extend(sheet);
                } else {
                    s1.push(json!({ "scores": sheet }));
                }
            }
            cells.push(c1);
            sheets.push(s1);
        }
        let single = run_lanes(&b.sandbox.base, &path, cells, concurrency).await?;
        let sheet = run_lanes(&b.sandbox.base, &path, sheets, concurrency).await?;
        let sid = crate::domain::ids::SectionId::from_db(b.section.clone());
        let stored = b
            .sandbox
            .services
            .db
            .run(move |c| Ok(repo::scores_of(c, &sid)?.len()))
            .await
            .map_err(|e| anyhow::anyhow!("{}", e.message))?;
        anyhow::ensure!(stored == total, "{stored} scores stored of {total}");
        let base = baseline(&dir, 2_000.min(total))?;
        let n1 = experts * half * items;
        let n2 = total - n1;
        let r1 = n1 as f64 / single.as_secs_f64();
        let r2 = n2 as f64 / sheet.as_secs_f64();
        println!("  baseline, one single-row commit per write on the same disk: {base:.0} writes/s");
        println!(
            "  one score per request:   {n1} durable writes in {:.2} s = {r1:.0} writes/s (ratio {:.2}) — target ≥ 5000: {}",
            single.as_secs_f64(),
            r1 / base,
            if r1 >= 5_000.0 { "met" } else { "NOT met" }
        );
        println!(
            "  one sheet per request:   {n2} durable writes in {:.2} s = {r2:.0} writes/s (ratio {:.2}) — target ≥ 5000: {}",
            sheet.as_secs_f64(),
            r2 / base,
            if r2 >= 5_000.0 { "met" } else { "NOT met" }
        );
        println!("  every request answered 200 after its commit; {stored} scores stored, none lost");
        b.sandbox.stop().await;
        tokio::time::sleep(Duration::from_millis(10)).await;
        Ok(())
    })
}

/// Sends each expert's requests over `concurrency` connections; the time
/// from the first request to the last answer. Any refusal fails the run.
async fn run_lanes(
    base: &str,
    path: &str,
    per_expert: Vec<Vec<Value>>,
    concurrency: usize,
) -> anyhow::Result<Duration> {
    // Clients are made (and connected) before the clock starts.
    let mut lanes = Vec::new();
    for work in per_expert {
        let work = Arc::new(work);
        for lane in 0..concurrency {
            let client = Client::new(base);
            let _: Result<Value, _> = client.get("/healthz").await;
            lanes.push((client, lane, work.clone()));
        }
    }
    let t = Instant::now();
    let mut tasks = Vec::new();
    for (client, lane, work) in lanes {
        let path = path.to_string();
        tasks.push(actix_web::rt::spawn(async move {
            let mut failures = Vec::new();
            for body in work.iter().skip(lane).step_by(concurrency) {
                let r: Result<Value, _> = client.post(&path, body).await;
                match r {
                    Ok(v) if v["new"].as_u64().is_some_and(|n| n > 0) => {}
                    other => failures.push(format!("{other:?}")),
                }
            }
            failures
        }));
    }
    let mut failures = Vec::new();
    for t in tasks {
        failures.extend(t.await?);
    }
    let elapsed = t.elapsed();
    anyhow::ensure!(
        failures.is_empty(),
        "{} requests failed, e.g. {}",
        failures.len(),
        failures[0]
    );
    Ok(elapsed)
}
