//! `kaibiao bench scores`: durable score writes per second (DESIGN §10:
//! at least 5,000 on SQLite, without "database is locked").
//!
//! A real platform (SQLite, `synchronous=FULL`, WAL) with a section whose
//! committee is seated and scoring, brought there through the platform like
//! any other section (bids submitted, opened, the committee drawn, admitted,
//! the bids qualified; nothing written to the database directly). Every
//! score then goes through the real endpoint over HTTP: the expert's
//! Ed25519 signature checked, the item's range, the cell written once, and
//! the answer sent only after the commit. The baseline in the same run is
//! one single-row commit per write with the same pragmas on the same disk.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::Connection;
use ed25519_dalek::SigningKey;
use serde_json::{json, Value};

use super::measure::work_dir;
use super::platform::{platform_with, seal_for, Bench};
use crate::client::Client;
use crate::clock::{AcceleratedClock, Clock};
use crate::crypto::sign;
use crate::db::evaluation as repo;
use crate::domain::decimal::Points;
use crate::domain::identity::Role;
use crate::evaluation::pass::{self, PassBody};
use crate::service::evaluation::{
    sign_statement, ScoreStatement, Signed, VoteStatement, SCORE_LABEL, VOTE_LABEL,
};

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

/// Brings the section to `scoring` through the platform, as its parties
/// would: `bids` bids sealed and submitted, the opening run, a pool of
/// `experts` imported, the committee drawn, every member answering its
/// call and admitted with a pass from this centre, and every bid reviewed
/// and qualified. Returns the bids (envelope hashes) and the members' keys.
async fn scoring_panel(
    b: &Bench,
    clock: &AcceleratedClock,
    dir: &std::path::Path,
    experts: usize,
    bids: usize,
) -> anyhow::Result<(Vec<String>, Vec<(String, SigningKey)>)> {
    let (s, sid) = (&b.sandbox, b.section.as_str());
    let plain = dir.join("bid-documents");
    std::fs::write(&plain, b"bench bid documents")?;
    for i in 0..bids {
        let out = dir.join(format!("bid-{i}"));
        seal_for(b, i, &plain, &out)?;
        b.bidders[i].0.submit(&out, &mut |_, _| {}).await?;
    }
    let supervisor_key = b.open(clock).await?;

    let (_, admin) = s.user(None, Role::Admin, "bench-admin").await?;
    let admin = s.signin(&admin).await?;
    let centre = s.services.config.evaluation.centre_code.clone();
    let employer = s.credit_code();
    let mut csv = crate::service::evaluation::CSV_COLUMNS.join(",") + "\n";
    for i in 0..experts {
        csv.push_str(&format!(
            "BENCH-X{i},{centre},bench expert {i},bench-x{i}@bench.example.cn,civil,{employer},,,yes\n"
        ));
    }
    let _: Value = admin.put_csv("/api/experts.csv", csv).await?;
    // The draw from this centre alone: the supervisor is the one contributor.
    let anon = Client::new(&s.base);
    let supervisor = crate::evaluation::seed::SUPERVISOR;
    let _: Value = anon
        .commit_to_draw(sid, supervisor, &supervisor_key)
        .await?;
    let _: Value = b
        .host
        .post(
            &format!("/api/sections/{sid}/evaluation/draw"),
            &json!({"requirements": [{"specialty": "civil", "count": experts, "reserves": 0}],
                    "centres": [centre]}),
        )
        .await?;
    let _: Value = anon
        .reveal_to_draw(sid, supervisor, &supervisor_key)
        .await?;
    let now = clock.now().millis();
    let mut keys = Vec::new();
    for (email, token) in s.wait_expert_calls(experts).await? {
        let _: Value = anon
            .post(
                "/api/evaluation/answer",
                &json!({"token": token, "accept": true}),
            )
            .await?;
        let id = email.split('@').next().unwrap_or_default().to_uppercase();
        let k = sign::generate();
        let key = hex::encode(k.verifying_key().as_bytes());
        let p = pass::issue(
            &s.services.centre_key,
            PassBody::new(&centre, &id, &key, sid, now, 8 * 60),
        );
        let _: Value = anon
            .post(&format!("/api/sections/{sid}/evaluation/admit"), &p)
            .await?;
        keys.push((id, k));
    }

    let record: Value = anon
        .get(&format!("/api/public/sections/{sid}/opening-record"))
        .await?;
    let bid_ids: Vec<String> = record["record"]["bids"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|b| b["envelope_hash"].as_str().map(str::to_string))
        .collect();
    anyhow::ensure!(
        bid_ids.len() == bids,
        "{} bids opened of {bids}",
        bid_ids.len()
    );
    for (id, k) in &keys {
        for bid in &bid_ids {
            let st = VoteStatement {
                section_id: sid.into(),
                expert_id: id.clone(),
                bid: bid.clone(),
                pass: true,
                reason: None,
            };
            let sig = sign_statement(k, VOTE_LABEL, &st);
            let _: Value = anon
                .post(
                    &format!("/api/sections/{sid}/evaluation/votes"),
                    &Signed {
                        statement: st,
                        signature: sig,
                    },
                )
                .await?;
        }
    }
    let status: Value = b
        .host
        .get(&format!("/api/sections/{sid}/evaluation"))
        .await?;
    anyhow::ensure!(
        status["phase"] == "scoring",
        "the evaluation is {} rather than scoring",
        status["phase"]
    );
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
        (5..=51).contains(&experts)
            && experts % 2 == 1
            && bids >= 1
            && (1..=200).contains(&items)
            && concurrency >= 1,
        "--experts an odd number from 5 to 51, --bids at least 1, --items 1 to 200, --concurrency at least 1"
    );
    let (_t, dir) = work_dir(dir)?;
    actix_web::rt::System::new().block_on(async move {
        let clock = AcceleratedClock::starting_now(1.0);
        let b = platform_with(
            &dir,
            bids,
            chrono::Duration::hours(1),
            1 << 20,
            Arc::new(clock.clone()),
            spec(items),
        )
        .await?;
        let (bid_ids, keys) = scoring_panel(&b, &clock, &dir, experts, bids).await?;
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
