//! AES-256-GCM over a stream in fixed-size chunks, so parts of hundreds of
//! megabytes are sealed and opened in bounded memory on both sides.
//!
//! - Plaintext is cut into chunks of 1 MiB (the last may be shorter; an empty
//!   plaintext is one empty chunk). Each chunk becomes `ciphertext || tag(16)`.
//! - Nonce of chunk `i` (0-based): `0x00 × 7 || i as u32 big-endian ||
//!   last`, where `last` is 0x01 for the final chunk and 0x00 otherwise. A
//!   truncated stream therefore fails (its new last chunk was sealed with
//!   `last = 0`), and chunks cannot be reordered.
//! - No associated data: every part key is unique (see `envelope.rs`).
//! - Ciphertext length = plaintext length + 16 × max(1, ⌈len / 1 MiB⌉).

use std::io::{self, Read, Write};

use openssl::cipher::Cipher;
use openssl::cipher_ctx::CipherCtx;

pub const CHUNK: usize = 1 << 20;
pub const TAG: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("the ciphertext length is not valid for this format")]
    Length,
    #[error("a chunk failed authentication (wrong key, altered or truncated data)")]
    Auth,
    #[error(transparent)]
    Io(#[from] io::Error),
}

fn chunks(plain_len: u64) -> u64 {
    plain_len.div_ceil(CHUNK as u64).max(1)
}

pub fn ciphertext_len(plain_len: u64) -> u64 {
    plain_len + TAG as u64 * chunks(plain_len)
}

/// The plaintext length for a ciphertext length, if any plaintext has it.
pub fn plaintext_len(ct_len: u64) -> Option<u64> {
    let full = (CHUNK + TAG) as u64;
    let n_full = ct_len / full;
    let rest = ct_len % full;
    let plain = if rest == 0 {
        if n_full == 0 {
            return None;
        }
        n_full * CHUNK as u64
    } else if rest >= TAG as u64 {
        n_full * CHUNK as u64 + rest - TAG as u64
    } else {
        return None;
    };
    (ciphertext_len(plain) == ct_len).then_some(plain)
}

pub fn nonce(counter: u32, last: bool) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[7..11].copy_from_slice(&counter.to_be_bytes());
    n[11] = last as u8;
    n
}

/// What sealing a part produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedStream {
    pub ciphertext_len: u64,
    /// SHA-256 of the ciphertext.
    pub sha256: [u8; 32],
}

/// Reads exactly `buf.len()` bytes unless the reader ends first.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Encrypts `plain_len` bytes from `r` to `w`, hashing the ciphertext as it
/// goes; `progress` is told the plaintext bytes done after each chunk.
///
/// Two threads share the work: this one reads, encrypts and writes; a second
/// one hashes each encrypted chunk meanwhile. Chunks are 1 MiB buffers
/// shared between the two and recycled, so memory stays at a few chunks
/// whatever the size.
pub fn seal(
    key: &[u8; 32],
    mut r: impl Read,
    plain_len: u64,
    mut w: impl Write,
    progress: &mut dyn FnMut(u64),
) -> Result<SealedStream, StreamError> {
    use std::sync::mpsc::sync_channel;
    use std::sync::Arc;
    let (hash_tx, hash_rx) = sync_channel::<Arc<Vec<u8>>>(4);
    let (pool_tx, pool_rx) = sync_channel::<Vec<u8>>(8);
    let recycle = {
        let pool_tx = pool_tx.clone();
        move |buf: Arc<Vec<u8>>| {
            // Whoever is done with a chunk last returns it to the pool.
            if let Ok(v) = Arc::try_unwrap(buf) {
                let _ = pool_tx.try_send(v);
            }
        }
    };
    std::thread::scope(|scope| {
        let hasher = scope.spawn(move || {
            let mut h = openssl::sha::Sha256::new();
            for buf in hash_rx {
                h.update(&buf);
                if let Ok(v) = Arc::try_unwrap(buf) {
                    let _ = pool_tx.try_send(v);
                }
            }
            h.finish()
        });
        let produced = (|| -> Result<(), StreamError> {
            let mut ctx = CipherCtx::new().expect("cipher context");
            ctx.encrypt_init(Some(Cipher::aes_256_gcm()), Some(key), None)
                .expect("AES-256-GCM");
            let total = chunks(plain_len);
            let mut done = 0u64;
            for i in 0..total {
                let want = (plain_len - done).min(CHUNK as u64) as usize;
                let mut buf = pool_rx.try_recv().unwrap_or_default();
                buf.resize(want + TAG, 0);
                let got = read_full(&mut r, &mut buf[..want])?;
                if got != want {
                    return Err(StreamError::Io(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the input is shorter than its stated length",
                    )));
                }
                let last = i + 1 == total;
                ctx.encrypt_init(None, None, Some(&nonce(i as u32, last)))
                    .expect("nonce");
                ctx.cipher_update_inplace(&mut buf[..want], want)
                    .expect("encrypt");
                ctx.cipher_final(&mut []).expect("final");
                ctx.tag(&mut buf[want..want + TAG]).expect("tag");
                let buf = Arc::new(buf);
                hash_tx
                    .send(buf.clone())
                    .map_err(|_| StreamError::Io(io::Error::other("the hashing thread stopped")))?;
                w.write_all(&buf)?;
                recycle(buf);
                done += want as u64;
                progress(done);
            }
            // The input must end where it said it would.
            if read_full(&mut r, &mut [0u8; 1])? != 0 {
                return Err(StreamError::Io(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "the input is longer than its stated length",
                )));
            }
            w.flush()?;
            Ok(())
        })();
        drop(hash_tx);
        let sha256 = hasher
            .join()
            .map_err(|_| StreamError::Io(io::Error::other("the hashing thread panicked")))?;
        produced?;
        Ok(SealedStream {
            ciphertext_len: ciphertext_len(plain_len),
            sha256,
        })
    })
}

/// Decrypts a ciphertext of `ct_len` bytes from `r` to `w`. Plaintext is
/// written chunk by chunk only after each chunk authenticates; on error the
/// caller must discard what was written.
pub fn open(
    key: &[u8; 32],
    mut r: impl Read,
    ct_len: u64,
    mut w: impl Write,
) -> Result<u64, StreamError> {
    let plain_len = plaintext_len(ct_len).ok_or(StreamError::Length)?;
    let mut ctx = CipherCtx::new().expect("cipher context");
    ctx.decrypt_init(Some(Cipher::aes_256_gcm()), Some(key), None)
        .expect("AES-256-GCM");
    let mut buf = vec![0u8; CHUNK + TAG];
    let total = chunks(plain_len);
    let mut done = 0u64;
    for i in 0..total {
        let want = (plain_len - done).min(CHUNK as u64) as usize;
        let got = read_full(&mut r, &mut buf[..want + TAG])?;
        if got != want + TAG {
            return Err(StreamError::Auth);
        }
        let last = i + 1 == total;
        ctx.decrypt_init(None, None, Some(&nonce(i as u32, last)))
            .expect("nonce");
        ctx.set_tag(&buf[want..want + TAG]).expect("tag");
        ctx.cipher_update_inplace(&mut buf[..want], want)
            .map_err(|_| StreamError::Auth)?;
        ctx.cipher_final(&mut []).map_err(|_| StreamError::Auth)?;
        w.write_all(&buf[..want])?;
        done += want as u64;
    }
    w.flush()?;
    Ok(plain_len)
}

/// Decrypts a small ciphertext held in memory (the summary part).
pub fn open_to_vec(key: &[u8; 32], ct: &[u8]) -> Result<zeroize::Zeroizing<Vec<u8>>, StreamError> {
    let mut out = zeroize::Zeroizing::new(Vec::with_capacity(ct.len()));
    open(key, ct, ct.len() as u64, &mut *out)?;
    Ok(out)
}

/// Encrypts a small plaintext held in memory.
pub fn seal_to_vec(key: &[u8; 32], pt: &[u8]) -> (Vec<u8>, SealedStream) {
    let mut out = Vec::with_capacity(ciphertext_len(pt.len() as u64) as usize);
    let s = seal(key, pt, pt.len() as u64, &mut out, &mut |_| {}).expect("in-memory sealing");
    (out, s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_round_trip() {
        for len in [
            0u64,
            1,
            100,
            CHUNK as u64 - 1,
            CHUNK as u64,
            CHUNK as u64 + 1,
            3 * CHUNK as u64,
        ] {
            assert_eq!(plaintext_len(ciphertext_len(len)), Some(len), "{len}");
        }
        assert_eq!(ciphertext_len(0), 16);
        assert_eq!(ciphertext_len(CHUNK as u64), CHUNK as u64 + 16);
        assert_eq!(ciphertext_len(CHUNK as u64 + 1), CHUNK as u64 + 1 + 32);
        assert_eq!(plaintext_len(0), None);
        assert_eq!(plaintext_len(15), None);
    }

    #[test]
    fn seal_open_across_chunk_boundaries() {
        let key = [7u8; 32];
        for len in [0usize, 5, CHUNK, CHUNK + 17, 2 * CHUNK] {
            let pt: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let (ct, s) = seal_to_vec(&key, &pt);
            assert_eq!(ct.len() as u64, s.ciphertext_len);
            assert_eq!(s.sha256, crate::crypto::sha256(&ct));
            assert_eq!(open_to_vec(&key, &ct).unwrap().as_slice(), pt.as_slice());
        }
    }

    #[test]
    fn truncation_tampering_and_wrong_keys_fail() {
        let key = [9u8; 32];
        let pt = vec![42u8; 2 * CHUNK + 10];
        let (ct, _) = seal_to_vec(&key, &pt);
        // Drop the last chunk: the new last chunk was not sealed as last.
        let cut = &ct[..2 * (CHUNK + TAG)];
        assert!(matches!(open_to_vec(&key, cut), Err(StreamError::Auth)));
        let mut bad = ct.clone();
        bad[CHUNK + TAG + 5] ^= 1;
        assert!(matches!(open_to_vec(&key, &bad), Err(StreamError::Auth)));
        assert!(matches!(
            open_to_vec(&[8u8; 32], &ct),
            Err(StreamError::Auth)
        ));
        // Swap the first two chunks.
        let mut swapped = ct[CHUNK + TAG..2 * (CHUNK + TAG)].to_vec();
        swapped.extend_from_slice(&ct[..CHUNK + TAG]);
        swapped.extend_from_slice(&ct[2 * (CHUNK + TAG)..]);
        assert!(matches!(
            open_to_vec(&key, &swapped),
            Err(StreamError::Auth)
        ));
    }

    #[test]
    fn the_stated_length_must_be_the_real_length() {
        let key = [1u8; 32];
        let r = seal(&key, &b"abc"[..], 4, Vec::new(), &mut |_| {});
        assert!(matches!(r, Err(StreamError::Io(_))));
        let r = seal(&key, &b"abcd"[..], 3, Vec::new(), &mut |_| {});
        assert!(matches!(r, Err(StreamError::Io(_))));
    }
}
