//! `kaibiao bench …`: the performance targets of DESIGN §10, each measured
//! against a baseline taken in the same run on the same machine, and
//! reported as a ratio. Never timed tests: these are run by hand (and once,
//! small, by the test suite to keep them working).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Subcommand;
use serde_json::{json, Value};

use super::sandbox::Sandbox;
use crate::client::{self, Client, SealRequest};
use crate::clock::{AcceleratedClock, SharedClock, SystemClock};
use crate::crypto::{sign, x25519};
use crate::domain::identity::{OrgKind, Role};

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Server ingest of one sealed bid vs `dd conv=fsync` of the same size;
    /// server memory growth during the upload.
    Ingest {
        /// Bytes of bid documents, e.g. 1GiB, 64MiB.
        #[arg(long, default_value = "1GiB")]
        size: String,
        /// Rounds of (dd, ingest); the disk of a virtual machine varies a
        /// lot from one second to the next, so the median is reported.
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// Working directory (default: a temporary one under /tmp).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Client sealing throughput vs raw AES-256-GCM, SHA-256 and a file copy.
    Seal {
        #[arg(long, default_value = "1GiB")]
        size: String,
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Durable score writes: experts' signed scores over HTTP, each
    /// answered only after its commit (SQLite, synchronous=FULL), vs one
    /// single-row commit per write on the same disk.
    Scores {
        /// Experts on the panel (each a separate client).
        #[arg(long, default_value_t = 7)]
        experts: usize,
        /// Qualified bids each expert scores.
        #[arg(long, default_value_t = 30)]
        bids: usize,
        /// Scored items per bid (the price item is computed, not scored).
        #[arg(long, default_value_t = 50)]
        items: usize,
        /// Requests in flight per expert.
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// The opening's decryption: sealed bids opened with the custodians'
    /// keys, exactly as the decryption job does, vs raw AES-256-GCM.
    Decrypt {
        #[arg(long, default_value_t = 50)]
        bids: usize,
        /// Bytes of documents in each bid, e.g. 100MB, 64MiB.
        #[arg(long, default_value = "100MB")]
        size: String,
        /// Decryption threads (0: one per core, the server's default).
        #[arg(long, default_value_t = 0)]
        threads: usize,
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Watchers in one opening room: time from the room sending an event to
    /// each watcher receiving it, server memory per connection, and the
    /// effect of one stalled watcher on everyone else.
    Room {
        #[arg(long, default_value_t = 10_000)]
        watchers: usize,
        #[arg(long, default_value_t = 100)]
        events: usize,
        /// Events per second.
        #[arg(long, default_value_t = 10.0)]
        rate: f64,
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// The watcher process of `bench room` (not for direct use).
    #[command(hide = true)]
    RoomWatchers {
        #[arg(long)]
        addr: String,
        #[arg(long)]
        section: String,
        #[arg(long)]
        watchers: usize,
        #[arg(long)]
        stalled: bool,
    },
    /// Many bidders submitting at once in the last minute before a deadline.
    Submit {
        #[arg(long, default_value_t = 500)]
        bids: usize,
        #[arg(long, default_value = "10MiB")]
        size: String,
        /// Seconds before the deadline at which everyone starts.
        #[arg(long, default_value_t = 60)]
        window: u64,
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

pub fn parse_size(s: &str) -> anyhow::Result<u64> {
    let s = s.trim();
    let (num, mult) = match s {
        _ if s.ends_with("GiB") => (&s[..s.len() - 3], 1u64 << 30),
        _ if s.ends_with("MiB") => (&s[..s.len() - 3], 1 << 20),
        _ if s.ends_with("KiB") => (&s[..s.len() - 3], 1 << 10),
        _ if s.ends_with("GB") => (&s[..s.len() - 2], 1_000_000_000),
        _ if s.ends_with("MB") => (&s[..s.len() - 2], 1_000_000),
        _ => (s, 1),
    };
    let n: u64 = num
        .trim()
        .parse()
        .map_err(|_| anyhow::anyhow!("not a size: {s} (e.g. 64MiB, 100MB)"))?;
    Ok(n * mult)
}

pub(super) fn gbps(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / d.as_secs_f64() / 1e9
}

/// Resident set size and its high-water mark, in KiB, from /proc.
pub(super) fn rss() -> (u64, u64) {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        s.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Resets the high-water mark (Linux: `echo 5 > /proc/self/clear_refs`).
pub(super) fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

pub(super) fn work_dir(dir: Option<PathBuf>) -> anyhow::Result<(tempfile::TempDir, PathBuf)> {
    let t = match dir {
        Some(d) => {
            std::fs::create_dir_all(&d)?;
            tempfile::tempdir_in(d)?
        }
        None => tempfile::tempdir()?,
    };
    let p = t.path().to_path_buf();
    Ok((t, p))
}

pub(super) fn fill(path: &Path, size: u64) -> anyhow::Result<()> {
    let mut f = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    let block: Vec<u8> = (0..1 << 20).map(|i| (i * 7 % 251) as u8).collect();
    let mut left = size;
    while left > 0 {
        let n = left.min(block.len() as u64) as usize;
        f.write_all(&block[..n])?;
        left -= n as u64;
    }
    f.flush()?;
    Ok(())
}

/// Writes back every dirty page first, so that a timed phase does not pay
/// for the writes of the one before.
pub(super) fn settle() {
    let _ = std::process::Command::new("sync").status();
}

/// The baseline DESIGN names: `dd` writing the same number of bytes, fsynced.
fn dd_baseline(dir: &Path, size: u64) -> anyhow::Result<Duration> {
    let out = dir.join("dd.out");
    let count = size.div_ceil(1 << 20);
    settle();
    let t = Instant::now();
    let st = std::process::Command::new("dd")
        .args([
            "if=/dev/zero",
            &format!("of={}", out.display()),
            "bs=1M",
            &format!("count={count}"),
            "conv=fsync",
        ])
        .stderr(std::process::Stdio::null())
        .status()?;
    let d = t.elapsed();
    anyhow::ensure!(st.success(), "dd failed");
    // The file stays until the end of the run: deleting gigabytes on a disk
    // mounted with `discard` stalls the journal, and the next timed phase
    // would pay for it.
    Ok(d)
}

pub fn run(cmd: BenchCommand) -> anyhow::Result<()> {
    match cmd {
        BenchCommand::Seal { size, dir } => bench_seal(parse_size(&size)?, dir),
        BenchCommand::Room {
            watchers,
            events,
            rate,
            dir,
        } => super::bench_room::bench_room(watchers, events, rate, dir),
        BenchCommand::RoomWatchers {
            addr,
            section,
            watchers,
            stalled,
        } => super::bench_room::room_watchers(addr, section, watchers, stalled),
        BenchCommand::Scores {
            experts,
            bids,
            items,
            concurrency,
            dir,
        } => super::bench_evaluation::bench_scores(experts, bids, items, concurrency, dir),
        BenchCommand::Decrypt {
            bids,
            size,
            threads,
            dir,
        } => super::bench_opening::bench_decrypt(bids, parse_size(&size)?, threads, dir),
        BenchCommand::Ingest { size, runs, dir } => {
            let size = parse_size(&size)?;
            actix_web::rt::System::new().block_on(bench_ingest(size, runs.max(1), dir))
        }
        BenchCommand::Submit {
            bids,
            size,
            window,
            dir,
        } => {
            let size = parse_size(&size)?;
            actix_web::rt::System::new().block_on(bench_submit(bids, size, window, dir))
        }
    }
}

fn bench_seal(size: u64, dir: Option<PathBuf>) -> anyhow::Result<()> {
    let (_t, dir) = work_dir(dir)?;
    let plain = dir.join("plain");
    fill(&plain, size)?;
    // Baselines: the primitives alone, in memory, over the same bytes.
    let chunk: Vec<u8> = (0..crate::crypto::stream::CHUNK).map(|i| i as u8).collect();
    let chunks = size.div_ceil(chunk.len() as u64);
    let key = [7u8; 32];
    let t = Instant::now();
    let mut ctx = openssl::cipher_ctx::CipherCtx::new()?;
    ctx.encrypt_init(
        Some(openssl::cipher::Cipher::aes_256_gcm()),
        Some(&key),
        None,
    )?;
    let mut buf = chunk.clone();
    for i in 0..chunks {
        ctx.encrypt_init(
            None,
            None,
            Some(&crate::crypto::stream::nonce(i as u32, false)),
        )?;
        ctx.cipher_update_inplace(&mut buf, chunk.len())?;
        ctx.cipher_final(&mut [])?;
    }
    let aes = t.elapsed();
    let t = Instant::now();
    let mut h = openssl::sha::Sha256::new();
    for _ in 0..chunks {
        h.update(&chunk);
    }
    let _ = h.finish();
    let sha = t.elapsed();
    let t = Instant::now();
    std::fs::copy(&plain, dir.join("copy"))?;
    let copy = t.elapsed();
    std::fs::remove_file(dir.join("copy"))?;

    // The client: read, encrypt in chunks, hash the ciphertext, write.
    let params = fake_params();
    let params = (params.0, params.1);
    let (p, hash) = (params.0.as_str(), params.1.as_str());
    let signing = sign::generate();
    let enc = x25519::SecretKey::generate();
    let t = Instant::now();
    client::seal_to_dir(
        SealRequest {
            params_json: p,
            params_hash: hash,
            bidder: "org_bench",
            signing: &signing,
            encryption_public: enc.public_key(),
            fields: [("price".to_string(), "1.00".to_string())].into(),
            documents: &plain,
            supersedes: None,
            now_ms: 0,
        },
        &dir.join("bid"),
        &mut |_| {},
    )?;
    let seal = t.elapsed();
    println!("sealing {:.2} GiB", size as f64 / (1u64 << 30) as f64);
    println!(
        "  AES-256-GCM, 1 MiB chunks, in memory : {:>6.2} GB/s",
        gbps(size, aes)
    );
    println!(
        "  SHA-256, in memory                   : {:>6.2} GB/s",
        gbps(size, sha)
    );
    println!(
        "  file copy (read + write)             : {:>6.2} GB/s",
        gbps(size, copy)
    );
    println!(
        "  kaibiao bid seal (read, encrypt, hash, write): {:.2} GB/s",
        gbps(size, seal)
    );
    println!(
        "  ratios: {:.2} of AES alone, {:.2} of SHA-256 alone, {:.2} of a file copy; target ≥ 1 GB/s: {}",
        aes.as_secs_f64() / seal.as_secs_f64(),
        sha.as_secs_f64() / seal.as_secs_f64(),
        copy.as_secs_f64() / seal.as_secs_f64(),
        if gbps(size, seal) >= 1.0 { "met" } else { "NOT met" }
    );
    Ok(())
}

/// Parameters for sealing without a server (bench only): one custodian set
/// of 5, 3-of-5; with the custodians' secret keys, by position 1–5.
pub(super) fn fake_params() -> (String, String, Vec<x25519::SecretKey>) {
    let secrets: Vec<x25519::SecretKey> = (0..5).map(|_| x25519::SecretKey::generate()).collect();
    let custodians: Vec<Value> = secrets
        .iter()
        .enumerate()
        .map(|(i, k)| {
            json!({"position": i + 1, "user_id": format!("usr_{}", i + 1), "identity_key": "00".repeat(32),
                   "section_key": hex::encode(k.public_key())})
        })
        .collect();
    let p = json!({
        "format": "kaibiao-section-params/1", "params_version": 1, "section_id": "sec_bench", "section_code": "B",
        "section_name": "bench", "project_id": "prj_bench", "project_code": "B", "project_name": "bench",
        "category": "construction", "centre_id": "org_c", "tenderer_id": "org_t", "published_at_ms": 0,
        "deadline_ms": 1, "grace_ms": 0, "decryption_mode": "custodians", "window_ms": 1, "threshold": 3,
        "custodians": custodians, "min_bidders": 1, "ceiling_price": null,
        "summary_fields": [{"key": "price", "label": "price", "kind": "money", "required": true}],
        "evaluation": {"method": "lowest_price", "items": [], "price": null,
                       "aggregation": {"trim_when_at_least": 7, "outlier_points": "20.00"}},
        "documents": [], "platform_key": "00".repeat(32),
    });
    let text =
        String::from_utf8(crate::crypto::jcs::canonicalize(&p).expect("json")).expect("utf-8");
    let hash = crate::crypto::sha256_hex(text.as_bytes());
    (text, hash, secrets)
}

/// A running platform with one published section and `bidders` bidders
/// whose keys are registered, signed in.
pub(super) struct Bench {
    pub(super) sandbox: Sandbox,
    pub(super) section: String,
    pub(super) host: Client,
    params: (String, String),
    bidders: Vec<(Client, String, ed25519_dalek::SigningKey, x25519::SecretKey)>,
}

pub(super) async fn platform(
    dir: &Path,
    bidders: usize,
    deadline_in: chrono::Duration,
    max_bid: u64,
    clock: SharedClock,
) -> anyhow::Result<Bench> {
    platform_with(
        dir,
        bidders,
        deadline_in,
        max_bid,
        clock,
        json!({"method": "lowest_price"}),
    )
    .await
}

/// [`platform`], with the section's evaluation criteria.
pub(super) async fn platform_with(
    dir: &Path,
    bidders: usize,
    deadline_in: chrono::Duration,
    max_bid: u64,
    clock: SharedClock,
    evaluation: Value,
) -> anyhow::Result<Bench> {
    let sandbox = Sandbox::start(dir, None, clock.clone(), |c| {
        c.server.max_bid_bytes = max_bid;
        c.rules.min_days_other = 0;
        c.database.pool_size = 16;
        c.log.level = "warn".into();
    })
    .await?;
    let centre = sandbox.org(OrgKind::TradingCentre, "bench centre").await?;
    let tenderer = sandbox.org(OrgKind::Tenderer, "bench tenderer").await?;
    let regulator = sandbox.org(OrgKind::Regulator, "bench regulator").await?;
    let (_, host_name) = sandbox
        .user(Some(&centre), Role::Host, "bench-host")
        .await?;
    let host = sandbox.signin(&host_name).await?;
    let project: Value = host
        .post(
            "/api/projects",
            &json!({"code": "BENCH", "name": "bench", "category": "land_use", "must_tender_by_law": false,
                    "tenderer_org_id": tenderer, "regulator_org_id": regulator}),
        )
        .await?;
    let mut custodians = Vec::new();
    for i in 0..3 {
        let (user_id, name) = sandbox
            .user(
                Some(&centre),
                Role::Custodian,
                &format!("bench-custodian-{i}"),
            )
            .await?;
        let c = sandbox.signin(&name).await?;
        let id = sign::generate();
        c.register_ed25519("custodian_identity", &id).await?;
        custodians.push((c, user_id, id));
    }
    let section: Value = host
        .post(
            &format!("/api/projects/{}/sections", project["id"].as_str().unwrap_or_default()),
            &json!({"code": "B-1", "name": "bench", "deadline": clock.now().plus(deadline_in).rfc3339(),
                    "custodians": custodians.iter().map(|c| c.1.clone()).collect::<Vec<_>>(), "threshold": 2,
                    "min_bidders": 1, "evaluation": evaluation}),
        )
        .await?;
    let sid = section["id"].as_str().unwrap_or_default().to_string();
    for (c, uid, id) in &custodians {
        c.register_section_key(&sid, uid, id, &x25519::SecretKey::generate())
            .await?;
    }
    sandbox
        .upload(&host, &sid, "doc.pdf", b"%PDF bench")
        .await?;
    let _: Value = host
        .post(&format!("/api/sections/{sid}/publish"), &json!({}))
        .await?;
    let (_, hash, json_text) = Client::new(&sandbox.base).params(&sid).await?;
    let mut list = Vec::new();
    for i in 0..bidders {
        let org = sandbox
            .org(OrgKind::Bidder, &format!("bench bidder {i}"))
            .await?;
        let (_, name) = sandbox
            .user(Some(&org), Role::Bidder, &format!("bench-bidder-{i}"))
            .await?;
        let c = sandbox.signin(&name).await?;
        let s = sign::generate();
        let e = x25519::SecretKey::generate();
        c.register_ed25519("bidder_signing", &s).await?;
        c.register_x25519(&e).await?;
        list.push((c, org, s, e));
    }
    Ok(Bench {
        sandbox,
        host,
        section: sid,
        params: (json_text, hash),
        bidders: list,
    })
}

fn seal_for(b: &Bench, i: usize, plain: &Path, out: &Path) -> anyhow::Result<String> {
    let (_, org, s, e) = &b.bidders[i];
    let (h, _) = client::seal_to_dir(
        SealRequest {
            params_json: &b.params.0,
            params_hash: &b.params.1,
            bidder: org,
            signing: s,
            encryption_public: e.public_key(),
            fields: [("price".to_string(), format!("{}.00", 1000 + i))].into(),
            documents: plain,
            supersedes: None,
            now_ms: 0,
        },
        out,
        &mut |_| {},
    )?;
    Ok(h)
}

async fn bench_ingest(size: u64, runs: usize, dir: Option<PathBuf>) -> anyhow::Result<()> {
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

async fn bench_submit(
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
            Ok(receipt)
                if receipt
                    .verify(&platform_key, &receipt.receipt.envelope_hash)
                    .is_ok() =>
            {
                ok += 1
            }
            Ok(_) => eprintln!("a receipt did not verify"),
            Err(e) => eprintln!("a submission failed: {e}"),
        }
        last = last.max(done.duration_since(t));
    }
    let total = size * bids as u64;
    println!(
        "{bids} bids of {:.1} MiB submitted concurrently, starting {window} s before the deadline:",
        size as f64 / 1048576.0
    );
    println!("  all done after {:.1} s ({:.2} GB/s of ciphertext); {ok} of {bids} accepted with verified receipts", last.as_secs_f64(), gbps(total, last));
    println!(
        "  finished {:.1} s before the deadline (target: all accepted: {})",
        window as f64 - last.as_secs_f64(),
        if ok == bids && last.as_secs() < window {
            "met"
        } else {
            "NOT met"
        }
    );
    b.sandbox.stop().await;
    anyhow::ensure!(ok == bids, "{} submissions failed", bids - ok);
    Ok(())
}
