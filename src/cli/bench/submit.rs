//! `kaibiao bench submit`: many bidders submitting at once in the last
//! minute before a deadline; all must be accepted, with verified promises and
//! then, after the log's flush, verified receipts,
//! before it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::measure::{fill, gbps, work_dir};
use super::platform::{platform, seal_for};
use crate::client::Client;
use crate::clock::AcceleratedClock;

pub async fn bench_submit(
    bids: usize,
    size: u64,
    window: u64,
    dir: Option<PathBuf>,
) -> anyhow::Result<()> {
    let (_t, dir) = work_dir(dir)?;
    // The platform's clock runs at real speed; once everything is prepared
    // it jumps to `window` seconds before the deadline, and everyone starts.
    let prep = Instant::now();
    let clock = AcceleratedClock::starting_now(1.0);
    let b = platform(
        &dir,
        bids,
        chrono::Duration::hours(2),
        size + (1 << 20),
        Arc::new(clock.clone()),
    )
    .await?;
    let plain = dir.join("plain");
    fill(&plain, size)?;
    let mut dirs = Vec::new();
    for i in 0..bids {
        let out = dir.join(format!("bid-{i}"));
        seal_for(&b, i, &plain, &out)?;
        dirs.push(out);
    }
    let deadline = {
        let v: Value = Client::new(&b.sandbox.base)
            .get(&format!("/api/public/sections/{}", b.section))
            .await?;
        crate::domain::time::Timestamp::parse_rfc3339(v["deadline"].as_str().unwrap_or_default())
            .ok_or_else(|| anyhow::anyhow!("no deadline"))?
    };
    println!(
        "prepared {bids} bidders and sealed {bids} bids of {:.1} MiB in {:.1} s",
        size as f64 / 1048576.0,
        prep.elapsed().as_secs_f64()
    );
    clock.set(
        deadline.minus(chrono::Duration::seconds(window as i64)),
        1.0,
    );
    let t = Instant::now();
    let platform_key = b.sandbox.services.platform_public_hex();
    let mut tasks = Vec::new();
    for (i, d) in dirs.iter().enumerate() {
        let c = b.bidders[i].0.clone();
        let d = d.clone();
        tasks.push(actix_web::rt::spawn(async move {
            let r = c.submit(&d, &mut |_, _| {}).await;
            (r, Instant::now())
        }));
    }
    let mut ok = 0;
    let mut last = Duration::ZERO;
    for task in tasks {
        let (r, done) = task.await?;
        match r {
            Ok(promise)
                if promise
                    .verify_promise(&platform_key, &promise.receipt.envelope_hash)
                    .is_ok() =>
            {
                ok += 1
            }
            Ok(_) => eprintln!("a promise did not verify"),
            Err(e) => eprintln!("a submission failed: {e}"),
        }
        last = last.max(done.duration_since(t));
    }
    // The log's next flush (ADR 9) logs them all; run it now rather than
    // wait for the schedule, and check every receipt against its promise.
    let f = Instant::now();
    crate::service::bids::flush_now(&b.sandbox.services)
        .await
        .map_err(|e| anyhow::anyhow!("the flush: {e}"))?;
    let flushed = f.elapsed();
    let mut receipted = 0;
    for (i, d) in dirs.iter().enumerate() {
        match b.bidders[i]
            .0
            .await_receipt(d, false, Duration::from_secs(10))
            .await
        {
            Ok(_) => receipted += 1,
            Err(e) => eprintln!("a receipt did not verify: {e}"),
        }
    }
    let total = size * bids as u64;
    println!(
        "{bids} bids of {:.1} MiB submitted concurrently, starting {window} s before the deadline:",
        size as f64 / 1048576.0
    );
    println!("  all done after {:.1} s ({:.2} GB/s of ciphertext); {ok} of {bids} accepted with verified promises", last.as_secs_f64(), gbps(total, last));
    println!(
        "  the flush that logs them took {:.1} ms; {receipted} of {bids} receipts verified against their promises",
        flushed.as_secs_f64() * 1000.0
    );
    println!(
        "  finished {:.1} s before the deadline (target: all accepted: {})",
        window as f64 - last.as_secs_f64(),
        if ok == bids && receipted == bids && last.as_secs() < window {
            "met"
        } else {
            "NOT met"
        }
    );
    b.sandbox.stop().await;
    anyhow::ensure!(ok == bids, "{} submissions failed", bids - ok);
    anyhow::ensure!(receipted == bids, "{} receipts failed", bids - receipted);
    Ok(())
}
