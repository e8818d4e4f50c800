//! `kaibiao bench seal`: the client's sealing (read, encrypt in chunks, hash
//! the ciphertext, write) against AES-256-GCM, SHA-256 and a file copy over
//! the same bytes, in the same run.

use std::path::PathBuf;
use std::time::Instant;

use super::measure::{fill, gbps, work_dir};
use super::platform::fake_params;
use crate::client::{self, SealRequest};
use crate::crypto::{sign, x25519};

pub fn bench_seal(size: u64, dir: Option<PathBuf>) -> anyhow::Result<()> {
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
