//! `kaibiao bench decrypt`: the opening's decryption — sealed bids opened
//! with the custodians' keys, exactly as the decryption job does — against
//! raw AES-256-GCM over the same bytes on the same threads, in the same run.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::measure::{fill, gbps, settle, work_dir};
use super::platform::fake_params;
use crate::client::{self, SealRequest, ENVELOPE_FILE};
use crate::crypto::envelope::{self, SignedEnvelope};
use crate::crypto::{sign, x25519};
use crate::domain::states::{DecryptedVia, OpeningStatus};
use crate::service::opening::open_all;
use crate::service::sections::SectionParams;
use crate::storage::BlobStore;

/// Raw AES-256-GCM decryption of `bytes` in 1 MiB chunks, in memory, on
/// each of `threads` threads at once; returns the wall time.
fn aes_baseline(bytes: u64, threads: usize) -> anyhow::Result<Duration> {
    let chunk = crate::crypto::stream::CHUNK;
    let per_thread = bytes.div_ceil(threads as u64);
    let t = Instant::now();
    std::thread::scope(|s| -> anyhow::Result<()> {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(move || -> anyhow::Result<()> {
                    let key = [7u8; 32];
                    let mut ctx = openssl::cipher_ctx::CipherCtx::new()?;
                    ctx.decrypt_init(
                        Some(openssl::cipher::Cipher::aes_256_gcm()),
                        Some(&key),
                        None,
                    )?;
                    let mut buf: Vec<u8> = (0..chunk).map(|i| i as u8).collect();
                    for i in 0..per_thread.div_ceil(chunk as u64) {
                        ctx.decrypt_init(
                            None,
                            None,
                            Some(&crate::crypto::stream::nonce(i as u32, false)),
                        )?;
                        ctx.cipher_update_inplace(&mut buf, chunk)?;
                        // The tag does not match (this is only the cipher's
                        // cost); the check itself is what is timed.
                        let _ = ctx.set_tag(&[0u8; 16]);
                        let _ = ctx.cipher_final(&mut []);
                    }
                    Ok(())
                })
            })
            .collect();
        for h in handles {
            h.join().expect("baseline thread")?;
        }
        Ok(())
    })?;
    Ok(t.elapsed())
}

pub fn bench_decrypt(
    bids: usize,
    size: u64,
    threads: usize,
    dir: Option<PathBuf>,
) -> anyhow::Result<()> {
    anyhow::ensure!(bids > 0 && size > 0, "--bids and --size must be positive");
    let threads = match threads {
        0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
        n => n,
    };
    let (_t, dir) = work_dir(dir)?;
    let plain = dir.join("plain");
    fill(&plain, size)?;
    let (params_json, params_hash, secrets) = fake_params();
    let params: SectionParams = serde_json::from_str(&params_json)?;
    let store = BlobStore::open(&dir.join("blobs"))?;

    // The bids as the platform holds them after the deadline: each part a
    // blob named by its hash.
    eprintln!("sealing {bids} bids of {size} bytes…");
    let signing = sign::generate();
    let enc = x25519::SecretKey::generate();
    let mut todo = Vec::new();
    let mut ciphertext = 0u64;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    for i in 0..bids {
        let out = dir.join(format!("bid{i}"));
        client::seal_to_dir(
            SealRequest {
                params_json: &params_json,
                params_hash: &params_hash,
                bidder: &format!("org_bench_{i}"),
                signing: &signing,
                encryption_public: enc.public_key(),
                fields: [("price".to_string(), format!("{}.00", 1000 + i))].into(),
                documents: &plain,
                supersedes: None,
                now_ms: 0,
            },
            &out,
            &mut |_| {},
        )?;
        let signed: SignedEnvelope =
            serde_json::from_slice(&std::fs::read(out.join(ENVELOPE_FILE))?)?;
        let (env, hash) = envelope::parse_signed(&signed)?;
        for p in &env.parts {
            rt.block_on(store.adopt(out.join(format!("{}.part", p.name)), p.sha256.clone()))?;
            ciphertext += p.length;
        }
        todo.push((hash, env));
    }
    settle();
    let released: Vec<(u32, x25519::SecretKey)> = secrets
        .into_iter()
        .take(3)
        .enumerate()
        .map(|(i, k)| (i as u32 + 1, k))
        .collect();

    // Baselines: the cipher alone over the same bytes, on one core and on all.
    let aes_one = aes_baseline(ciphertext / threads as u64, 1)?;
    let aes_all = aes_baseline(ciphertext, threads)?;

    // Warm the page cache the way a server that just received the bids has
    // it, then open every bid exactly as the decryption job does.
    let _ = open_timed(&store, &params, todo.clone(), &released, threads)?;
    let (t, decrypted) = open_timed(&store, &params, todo, &released, threads)?;
    anyhow::ensure!(
        decrypted == bids,
        "only {decrypted} of {bids} bids decrypted"
    );

    let per_core = gbps(ciphertext, t) / threads as f64;
    println!(
        "opening {bids} bids of {size} bytes ({:.2} GB of ciphertext) on {threads} thread(s)",
        ciphertext as f64 / 1e9
    );
    println!(
        "  AES-256-GCM alone, 1 core            : {:>6.2} GB/s",
        gbps(ciphertext / threads as u64, aes_one)
    );
    println!(
        "  AES-256-GCM alone, {threads} thread(s)        : {:>6.2} GB/s ({:.2} s)",
        gbps(ciphertext, aes_all),
        aes_all.as_secs_f64()
    );
    println!(
        "  kaibiao opening (shares, commitments, summary, every chunk authenticated): {:.2} s, {:.2} GB/s, {:.2} GB/s per core",
        t.as_secs_f64(),
        gbps(ciphertext, t),
        per_core
    );
    println!(
        "  ratio to the cipher alone on the same cores: {:.2}; target ≥ 3 GB/s per core: {}; {bids} × {size} B in ≤ 2 s: {}",
        aes_all.as_secs_f64() / t.as_secs_f64(),
        if per_core >= 3.0 { "met" } else { "NOT met" },
        if t.as_secs_f64() <= 2.0 { "met" } else { "NOT met" },
    );
    Ok(())
}

fn open_timed(
    store: &BlobStore,
    params: &SectionParams,
    todo: Vec<(String, envelope::Envelope)>,
    released: &[(u32, x25519::SecretKey)],
    threads: usize,
) -> anyhow::Result<(Duration, usize)> {
    let done = std::sync::atomic::AtomicUsize::new(0);
    let failed = std::sync::Mutex::new(None);
    let t = Instant::now();
    open_all(
        store,
        params,
        todo,
        released,
        DecryptedVia::Custodians,
        threads,
        |r| {
            match r {
                Ok((_, o)) if o.status() == OpeningStatus::Decrypted => {
                    done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                Ok((h, o)) => {
                    *failed.lock().expect("failed") = Some(format!("{h}: {}", o.status()))
                }
                Err(e) => *failed.lock().expect("failed") = Some(e.message),
            }
            true
        },
    );
    let t = t.elapsed();
    if let Some(f) = failed.into_inner().expect("failed") {
        anyhow::bail!("a bid did not open: {f}");
    }
    Ok((t, done.into_inner()))
}
