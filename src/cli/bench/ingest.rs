//! `kaibiao bench ingest`: the server's ingest of one large sealed bid
//! (stream, hash, write, fsync, store) against `dd conv=fsync` of the same
//! size, and the memory the upload costs.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use serde_json::Value;

use super::measure::{dd_baseline, fill, gbps, reset_peak, rss, settle, work_dir};
use super::platform::{platform, seal_for};
use crate::client;
use crate::clock::SystemClock;

pub async fn bench_ingest(size: u64, runs: usize, dir: Option<PathBuf>) -> anyhow::Result<()> {
    let (_t, dir) = work_dir(dir)?;
    let b = platform(
        &dir,
        runs,
        chrono::Duration::days(1),
        size + (1 << 20),
        Arc::new(SystemClock),
    )
    .await?;
    let plain = dir.join("plain");
    fill(&plain, size)?;
    let mut bids = Vec::new();
    for i in 0..runs {
        let bid = dir.join(format!("bid-{i}"));
        let hash = seal_for(&b, i, &plain, &bid)?;
        // Send the envelope and the small summary part now; time the documents.
        let c = &b.bidders[i].0;
        let envelope: Value = client::read_json(&bid.join(client::ENVELOPE_FILE))?;
        let _: Value = c.post("/api/bids", &envelope).await?;
        let mut res = awc::Client::default()
            .put(format!(
                "{}/api/bids/{hash}/parts/summary?offset=0",
                b.sandbox.base
            ))
            .bearer_auth(c.token().unwrap_or_default())
            .send_body(std::fs::read(bid.join("summary.part"))?)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let _ = res.body().await;
        bids.push((bid, hash));
    }
    let part = std::fs::metadata(bids[0].0.join("documents.part"))?.len();
    println!(
        "ingest of a sealed bid: {:.2} GiB of ciphertext over loopback HTTP, {runs} rounds",
        part as f64 / (1u64 << 30) as f64
    );
    let mut ratios = Vec::new();
    let mut growths = Vec::new();
    for (i, (bid, hash)) in bids.iter().enumerate() {
        let dd_dir = dir.join(format!("dd-{i}"));
        std::fs::create_dir_all(&dd_dir)?;
        let baseline = dd_baseline(&dd_dir, part)?;
        settle();
        let (rss_before, _) = rss();
        reset_peak();
        let t = Instant::now();
        let receipt = b.bidders[i].0.submit(bid, &mut |_, _| {}).await?;
        let ingest = t.elapsed();
        let (_, peak) = rss();
        anyhow::ensure!(&receipt.receipt.envelope_hash == hash, "no receipt");
        let ratio = baseline.as_secs_f64() / ingest.as_secs_f64();
        let growth = peak.saturating_sub(rss_before);
        println!(
            "  round {}: dd conv=fsync {:.3} s ({:.2} GB/s); kaibiao stream+hash+write+fsync+store {:.3} s ({:.2} GB/s); ratio {ratio:.2}; memory growth {:.1} MiB",
            i + 1,
            baseline.as_secs_f64(),
            gbps(part, baseline),
            ingest.as_secs_f64(),
            gbps(part, ingest),
            growth as f64 / 1024.0
        );
        ratios.push(ratio);
        growths.push(growth);
    }
    ratios.sort_by(|a, b| a.total_cmp(b));
    let median = ratios[ratios.len() / 2];
    let worst_growth = growths.iter().max().copied().unwrap_or(0);
    println!(
        "  median ratio to dd: {median:.2} (target ≥ 0.80: {})",
        if median >= 0.8 { "met" } else { "NOT met" }
    );
    println!(
        "  largest memory growth during an upload: {:.1} MiB (client and server together; target < 64 MiB: {})",
        worst_growth as f64 / 1024.0,
        if worst_growth < 64 * 1024 { "met" } else { "NOT met" }
    );
    b.sandbox.stop().await;
    Ok(())
}
