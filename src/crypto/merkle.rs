//! Merkle trees as in RFC 9162 §2.1 (RFC 6962): leaf hash
//! `SHA-256(0x00 || leaf)`, interior node `SHA-256(0x01 || left || right)`,
//! the tree over n leaves splits at the largest power of two below n.
//! Proof generation works over any source of subtree hashes (a slice in
//! memory, or the transparency log's stored nodes); verification follows
//! RFC 9162 §2.1.3.2 and §2.1.4.2 to the letter.

use openssl::sha::Sha256;

pub type Hash = [u8; 32];

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MerkleError {
    #[error("the index or sizes are out of range")]
    Range,
    #[error("the proof does not verify")]
    Proof,
}

pub fn leaf_hash(leaf: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update(&[0x00]);
    h.update(leaf);
    h.finish()
}

pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update(&[0x01]);
    h.update(left);
    h.update(right);
    h.finish()
}

pub fn empty_root() -> Hash {
    Sha256::new().finish()
}

/// The largest power of two strictly below `n` (n ≥ 2).
fn split_point(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (63 - (n - 1).leading_zeros())
}

/// A source of the hash of the subtree over leaves `[start, end)`.
pub trait Subtrees {
    fn leaf(&mut self, index: u64) -> Hash;

    /// `MTH(D[start:end])`. The default recursion is correct for any source;
    /// a store of perfect subtrees overrides it to look them up.
    fn subtree(&mut self, start: u64, end: u64) -> Hash {
        match end - start {
            0 => empty_root(),
            1 => self.leaf(start),
            n => {
                let k = split_point(n);
                let l = self.subtree(start, start + k);
                let r = self.subtree(start + k, end);
                node_hash(&l, &r)
            }
        }
    }
}

/// Leaf hashes in memory.
pub struct InMemory<'a>(pub &'a [Hash]);

impl Subtrees for InMemory<'_> {
    fn leaf(&mut self, index: u64) -> Hash {
        self.0[index as usize]
    }
}

pub fn root(leaf_hashes: &[Hash]) -> Hash {
    InMemory(leaf_hashes).subtree(0, leaf_hashes.len() as u64)
}

/// `PATH(m, D[start:end])` (RFC 6962 §2.1.1).
fn path(t: &mut impl Subtrees, m: u64, start: u64, end: u64, out: &mut Vec<Hash>) {
    let n = end - start;
    if n <= 1 {
        return;
    }
    let k = split_point(n);
    if m < k {
        path(t, m, start, start + k, out);
        out.push(t.subtree(start + k, end));
    } else {
        path(t, m - k, start + k, end, out);
        out.push(t.subtree(start, start + k));
    }
}

/// The inclusion proof of leaf `index` in the tree of the first `size` leaves.
pub fn inclusion_proof(
    t: &mut impl Subtrees,
    index: u64,
    size: u64,
) -> Result<Vec<Hash>, MerkleError> {
    if index >= size {
        return Err(MerkleError::Range);
    }
    let mut out = Vec::new();
    path(t, index, 0, size, &mut out);
    Ok(out)
}

/// `SUBPROOF(m, D[start:end], b)` (RFC 6962 §2.1.2).
fn subproof(
    t: &mut impl Subtrees,
    m: u64,
    start: u64,
    end: u64,
    complete: bool,
    out: &mut Vec<Hash>,
) {
    let n = end - start;
    if m == n {
        if !complete {
            out.push(t.subtree(start, end));
        }
        return;
    }
    let k = split_point(n);
    if m <= k {
        subproof(t, m, start, start + k, complete, out);
        out.push(t.subtree(start + k, end));
    } else {
        subproof(t, m - k, start + k, end, false, out);
        out.push(t.subtree(start, start + k));
    }
}

/// The consistency proof between the trees of sizes `m` and `n` (0 < m ≤ n).
pub fn consistency_proof(t: &mut impl Subtrees, m: u64, n: u64) -> Result<Vec<Hash>, MerkleError> {
    if m == 0 || m > n {
        return Err(MerkleError::Range);
    }
    let mut out = Vec::new();
    if m < n {
        subproof(t, m, 0, n, true, &mut out);
    }
    Ok(out)
}

fn lsb(x: u64) -> bool {
    x & 1 == 1
}

/// RFC 9162 §2.1.3.2.
pub fn verify_inclusion(
    index: u64,
    size: u64,
    leaf: &Hash,
    proof: &[Hash],
    root: &[u8],
) -> Result<(), MerkleError> {
    if size == 0 || index >= size {
        return Err(MerkleError::Range);
    }
    let (mut fn_, mut sn) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if sn == 0 {
            return Err(MerkleError::Proof);
        }
        if lsb(fn_) || fn_ == sn {
            r = node_hash(p, &r);
            if !lsb(fn_) {
                while !lsb(fn_) && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn == 0 && r.as_slice() == root {
        Ok(())
    } else {
        Err(MerkleError::Proof)
    }
}

/// RFC 9162 §2.1.4.2, with the edge cases: sizes must satisfy 0 < m ≤ n,
/// and equal sizes need an empty proof and equal roots.
pub fn verify_consistency(
    m: u64,
    n: u64,
    root1: &[u8],
    root2: &[u8],
    proof: &[Hash],
) -> Result<(), MerkleError> {
    if m == 0 || m > n {
        return Err(MerkleError::Range);
    }
    if m == n {
        return if proof.is_empty() && root1 == root2 {
            Ok(())
        } else {
            Err(MerkleError::Proof)
        };
    }
    if proof.is_empty() {
        return Err(MerkleError::Proof);
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if m.is_power_of_two() {
        path.push(root1.try_into().map_err(|_| MerkleError::Proof)?);
    }
    path.extend_from_slice(proof);
    let (mut fn_, mut sn) = (m - 1, n - 1);
    while lsb(fn_) {
        fn_ >>= 1;
        sn >>= 1;
    }
    let (mut fr, mut sr) = (path[0], path[0]);
    for c in &path[1..] {
        if sn == 0 {
            return Err(MerkleError::Proof);
        }
        if lsb(fn_) || fn_ == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if !lsb(fn_) {
                while !lsb(fn_) && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if fr.as_slice() == root1 && sr.as_slice() == root2 && sn == 0 {
        Ok(())
    } else {
        Err(MerkleError::Proof)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_proof_verifies_for_every_size_up_to_33() {
        let leaves: Vec<Hash> = (0..33u8).map(|i| leaf_hash(&[i])).collect();
        for n in 1..=33u64 {
            let t = &leaves[..n as usize];
            let r = root(t);
            for i in 0..n {
                let p = inclusion_proof(&mut InMemory(t), i, n).unwrap();
                verify_inclusion(i, n, &t[i as usize], &p, &r).unwrap();
                assert!(verify_inclusion(i, n, &leaf_hash(b"other"), &p, &r).is_err());
            }
            for m in 1..=n {
                let p = consistency_proof(&mut InMemory(t), m, n).unwrap();
                let r1 = root(&t[..m as usize]);
                verify_consistency(m, n, &r1, &r, &p).unwrap();
                if m < n {
                    assert!(verify_consistency(m, n, &leaf_hash(b"x"), &r, &p).is_err());
                }
            }
        }
    }
}
