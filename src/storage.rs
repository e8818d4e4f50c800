//! Content-addressed blob storage under `<data_dir>/blobs`: tender documents
//! now, sealed bid parts later. A blob is streamed to a temporary file while
//! its SHA-256 is computed in the same pass, fsynced, then renamed to
//! `sha256/ab/cd/<hash>` and the directory fsynced — so a stored blob is
//! complete and durable, and a failed or oversized upload leaves nothing
//! behind. The async side only forwards chunks over a bounded channel to one
//! blocking writer thread: memory stays bounded whatever the size.

use std::io::Write;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use tokio::sync::mpsc;

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("larger than the limit of {0} bytes")]
    TooLarge(u64),
    #[error("the upload was interrupted")]
    Interrupted,
    #[error("storage error: {0}")]
    Io(#[from] std::io::Error),
}

/// Held while one request writes an upload; released when dropped.
#[derive(Debug)]
pub struct UploadLock {
    _file: std::fs::File,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBlob {
    pub sha256: String,
    pub size: u64,
}

/// Chunks in flight between the network and the writer thread.
const CHANNEL_DEPTH: usize = 4;
/// The network delivers small pieces (tens of KiB); they are gathered into
/// pieces of this size before crossing to the writer thread, so the
/// hand-offs between threads stay few.
const BATCH: usize = 1 << 20;

/// A batch of network pieces crossing to the writer thread together.
type Batch = Vec<Bytes>;

/// Forwards `body` to the writer in batches of about [`BATCH`] bytes
/// (without copying: the pieces are shared), refusing more than `max`
/// bytes. Dropping the sender when done tells the writer the body ended;
/// the returned error (if any) says why it ended early.
async fn forward<S, E>(body: &mut S, tx: mpsc::Sender<Batch>, max: u64) -> Option<BlobError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
{
    let mut total = 0u64;
    let mut batch: Batch = Vec::new();
    let mut batched = 0usize;
    while let Some(chunk) = body.next().await {
        let Ok(b) = chunk else {
            return Some(BlobError::Interrupted);
        };
        total += b.len() as u64;
        if total > max {
            return Some(BlobError::TooLarge(max));
        }
        batched += b.len();
        batch.push(b);
        if batched >= BATCH {
            batched = 0;
            if tx.send(std::mem::take(&mut batch)).await.is_err() {
                return None; // the writer failed; its error is reported by the caller
            }
        }
    }
    if !batch.is_empty() {
        let _ = tx.send(batch).await;
    }
    None
}

/// Writes a batch with as few system calls as the kernel allows.
fn write_batch(f: &mut std::fs::File, batch: &[Bytes]) -> std::io::Result<u64> {
    let mut slices: Vec<std::io::IoSlice<'_>> =
        batch.iter().map(|b| std::io::IoSlice::new(b)).collect();
    let mut rest = &mut slices[..];
    let mut n_total = 0u64;
    while !rest.is_empty() {
        let n = f.write_vectored(rest)?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::WriteZero,
                "write returned 0",
            ));
        }
        n_total += n as u64;
        std::io::IoSlice::advance_slices(&mut rest, n);
    }
    Ok(n_total)
}

#[derive(Debug, Clone)]
pub struct BlobStore {
    root: PathBuf,
}

impl BlobStore {
    /// Opens (creating) the store rooted at `root` (by default `<data_dir>/blobs`).
    pub fn open(root: &Path) -> std::io::Result<Self> {
        let root = root.to_path_buf();
        std::fs::create_dir_all(root.join("tmp"))?;
        std::fs::create_dir_all(root.join("sha256"))?;
        std::fs::create_dir_all(root.join("uploads"))?;
        Ok(Self { root })
    }

    /// Where a resumable upload accumulates before it is adopted.
    pub fn upload_path(&self, upload: &str) -> PathBuf {
        self.root.join("uploads").join(upload)
    }

    /// Takes the exclusive lock of one upload, or `None` when another
    /// request (on this node or another sharing the store) holds it. A
    /// request cut off mid-stream keeps the lock until it has cut its file
    /// back, so a resume can never interleave with the bytes being removed.
    pub async fn lock_upload(&self, upload: &str) -> std::io::Result<Option<UploadLock>> {
        let path = self.root.join("uploads").join(format!("{upload}.lock"));
        tokio::task::spawn_blocking(move || {
            let file = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)?;
            match file.try_lock() {
                Ok(()) => Ok(Some(UploadLock { _file: file })),
                Err(std::fs::TryLockError::WouldBlock) => Ok(None),
                Err(std::fs::TryLockError::Error(e)) => Err(e),
            }
        })
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))?
    }

    /// Appends `body` to the upload file at `offset`, continuing `hasher`,
    /// refusing more than `max` bytes. The file is fsynced before this
    /// returns; on any failure it is cut back to `offset`, so what is on disk
    /// is always exactly the bytes acknowledged.
    pub async fn append_stream<S, E>(
        &self,
        path: PathBuf,
        offset: u64,
        hasher: openssl::sha::Sha256,
        mut body: S,
        max: u64,
    ) -> Result<(u64, openssl::sha::Sha256), BlobError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
    {
        let (tx, rx) = mpsc::channel::<Batch>(CHANNEL_DEPTH);
        let writer = tokio::task::spawn_blocking(move || append_file(&path, offset, hasher, rx));
        let failure = forward(&mut body, tx, max).await;
        let (written, hasher, file) = writer
            .await
            .map_err(|e| BlobError::Io(std::io::Error::other(e.to_string())))??;
        match failure {
            None => Ok((written, hasher)),
            Some(f) => {
                // Keep nothing that was not acknowledged.
                let _ = file.set_len(offset).and_then(|_| file.sync_all());
                Err(f)
            }
        }
    }

    /// Recomputes the hash of the first `len` bytes of an upload (after a
    /// restart, or when another node took the earlier bytes).
    pub async fn rehash(&self, path: PathBuf, len: u64) -> std::io::Result<openssl::sha::Sha256> {
        tokio::task::spawn_blocking(move || {
            use std::io::Read;
            let mut f = std::fs::File::open(&path)?.take(len);
            let mut h = openssl::sha::Sha256::new();
            let mut buf = vec![0u8; 1 << 20];
            let mut n_total = 0u64;
            loop {
                let n = f.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                h.update(&buf[..n]);
                n_total += n as u64;
            }
            if n_total != len {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "upload shorter than recorded",
                ));
            }
            Ok(h)
        })
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))?
    }

    /// Moves a finished upload whose SHA-256 is `sha256` into the store.
    pub async fn adopt(&self, path: PathBuf, sha256: String) -> Result<(), BlobError> {
        let root = self.root.clone();
        tokio::task::spawn_blocking(move || {
            commit(
                &root,
                TempBlob {
                    size: std::fs::metadata(&path)?.len(),
                    path,
                    sha256,
                },
            )
        })
        .await
        .map_err(|e| BlobError::Io(std::io::Error::other(e.to_string())))?
    }

    /// Removes an upload that will never complete.
    pub fn discard(&self, path: &Path) {
        let _ = std::fs::remove_file(path);
    }

    pub fn path_of(&self, sha256: &str) -> Option<PathBuf> {
        if sha256.len() != 64
            || !sha256
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        {
            return None;
        }
        Some(
            self.root
                .join("sha256")
                .join(&sha256[0..2])
                .join(&sha256[2..4])
                .join(sha256),
        )
    }

    pub fn exists(&self, sha256: &str) -> bool {
        self.path_of(sha256).is_some_and(|p| p.is_file())
    }

    /// Streams `body` into the store, refusing more than `max` bytes.
    pub async fn put_stream<S, E>(&self, mut body: S, max: u64) -> Result<StoredBlob, BlobError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
    {
        let (tx, rx) = mpsc::channel::<Batch>(CHANNEL_DEPTH);
        let root = self.root.clone();
        let writer = tokio::task::spawn_blocking(move || write_blob(&root, rx));
        let failure = forward(&mut body, tx, max).await;
        let keep = failure.is_none();
        let result = writer
            .await
            .map_err(|e| BlobError::Io(std::io::Error::other(e.to_string())))?;
        match (failure, result) {
            (Some(f), Ok(tmp)) => {
                let _ = std::fs::remove_file(tmp.path);
                Err(f)
            }
            (Some(f), Err(_)) => Err(f),
            (None, Err(e)) => Err(e),
            (None, Ok(tmp)) => {
                debug_assert!(keep);
                let stored = StoredBlob {
                    sha256: tmp.sha256.clone(),
                    size: tmp.size,
                };
                let root = self.root.clone();
                tokio::task::spawn_blocking(move || commit(&root, tmp))
                    .await
                    .map_err(|e| BlobError::Io(std::io::Error::other(e.to_string())))??;
                Ok(stored)
            }
        }
    }

    pub async fn open_read(&self, sha256: &str) -> std::io::Result<tokio::fs::File> {
        let p = self
            .path_of(sha256)
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "bad hash"))?;
        tokio::fs::File::open(p).await
    }
}

struct TempBlob {
    path: PathBuf,
    sha256: String,
    size: u64,
}

fn write_blob(root: &Path, mut rx: mpsc::Receiver<Batch>) -> Result<TempBlob, BlobError> {
    let name = hex::encode(crate::crypto::random_bytes::<16>());
    let path = root.join("tmp").join(name);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)?;
    let mut hasher = openssl::sha::Sha256::new();
    let mut size = 0u64;
    let r: Result<(), BlobError> = (|| {
        while let Some(batch) = rx.blocking_recv() {
            for b in &batch {
                hasher.update(b);
            }
            size += write_batch(&mut file, &batch)?;
        }
        file.sync_all()?;
        Ok(())
    })();
    if let Err(e) = r {
        drop(file);
        let _ = std::fs::remove_file(&path);
        return Err(e);
    }
    Ok(TempBlob {
        path,
        sha256: hex::encode(hasher.finish()),
        size,
    })
}

fn append_file(
    path: &Path,
    offset: u64,
    mut hasher: openssl::sha::Sha256,
    mut rx: mpsc::Receiver<Batch>,
) -> Result<(u64, openssl::sha::Sha256, std::fs::File), BlobError> {
    use std::io::{Seek, SeekFrom};
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(offset == 0)
        .truncate(false)
        .open(path)?;
    file.set_len(offset)?;
    file.seek(SeekFrom::Start(offset))?;
    let mut written = 0u64;
    // Hashing runs on its own thread beside the writes: the two together
    // would otherwise bound ingest at the speed of SHA-256 plus the disk.
    let (hash_tx, hash_rx) = std::sync::mpsc::sync_channel::<Batch>(CHANNEL_DEPTH);
    let (r, hasher) = std::thread::scope(|scope| {
        let h = scope.spawn(move || {
            for batch in hash_rx {
                for b in &batch {
                    hasher.update(b);
                }
            }
            hasher
        });
        let r: Result<(), std::io::Error> = (|| {
            while let Some(batch) = rx.blocking_recv() {
                let _ = hash_tx.send(batch.clone());
                written += write_batch(&mut file, &batch)?;
            }
            file.sync_data()
        })();
        drop(hash_tx);
        (r, h.join().expect("the hashing thread does not panic"))
    });
    if let Err(e) = r {
        // Drain what is still coming, then cut back to what was acknowledged.
        while rx.blocking_recv().is_some() {}
        let _ = file.set_len(offset).and_then(|_| file.sync_all());
        return Err(BlobError::Io(e));
    }
    Ok((written, hasher, file))
}

fn commit(root: &Path, tmp: TempBlob) -> Result<(), BlobError> {
    let store = BlobStore {
        root: root.to_path_buf(),
    };
    let dest = store.path_of(&tmp.sha256).expect("own hash is well-formed");
    let dir = dest.parent().expect("has a parent");
    std::fs::create_dir_all(dir)?;
    if dest.exists() {
        // Same content already stored: keep the existing copy.
        std::fs::remove_file(&tmp.path)?;
        return Ok(());
    }
    std::fs::rename(&tmp.path, &dest)?;
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(
        parts: Vec<Result<Bytes, std::io::Error>>,
    ) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Unpin {
        futures_util::stream::iter(parts)
    }

    #[tokio::test]
    async fn stores_by_hash_and_dedupes() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(&dir.path().join("blobs")).unwrap();
        let b = store
            .put_stream(
                chunks(vec![
                    Ok(Bytes::from_static(b"ab")),
                    Ok(Bytes::from_static(b"c")),
                ]),
                10,
            )
            .await
            .unwrap();
        assert_eq!(b.sha256, crate::crypto::sha256_hex(b"abc"));
        assert_eq!(b.size, 3);
        assert_eq!(
            std::fs::read(store.path_of(&b.sha256).unwrap()).unwrap(),
            b"abc"
        );
        let again = store
            .put_stream(chunks(vec![Ok(Bytes::from_static(b"abc"))]), 10)
            .await
            .unwrap();
        assert_eq!(again, b);
        assert_eq!(
            std::fs::read_dir(dir.path().join("blobs/tmp"))
                .unwrap()
                .count(),
            0
        );
    }

    #[tokio::test]
    async fn oversize_and_interrupted_uploads_leave_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(&dir.path().join("blobs")).unwrap();
        let r = store
            .put_stream(chunks(vec![Ok(Bytes::from(vec![0u8; 11]))]), 10)
            .await;
        assert!(matches!(r, Err(BlobError::TooLarge(10))));
        let r = store
            .put_stream(
                chunks(vec![
                    Ok(Bytes::from_static(b"abc")),
                    Err(std::io::Error::other("reset")),
                ]),
                10,
            )
            .await;
        assert!(matches!(r, Err(BlobError::Interrupted)));
        assert_eq!(
            std::fs::read_dir(dir.path().join("blobs/tmp"))
                .unwrap()
                .count(),
            0
        );
        assert!(!store.exists(&crate::crypto::sha256_hex(b"abc")));
    }

    #[tokio::test]
    async fn one_writer_holds_an_upload_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(&dir.path().join("blobs")).unwrap();
        let first = store.lock_upload("sub_1.documents").await.unwrap();
        assert!(first.is_some());
        // A second request, even through another handle, is turned away.
        assert!(store
            .lock_upload("sub_1.documents")
            .await
            .unwrap()
            .is_none());
        // Another part is independent.
        assert!(store.lock_upload("sub_1.pricing").await.unwrap().is_some());
        drop(first);
        assert!(store
            .lock_upload("sub_1.documents")
            .await
            .unwrap()
            .is_some());
    }
}
