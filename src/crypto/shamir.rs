//! Shamir secret sharing over GF(2^8), byte-compatible with the `blahaj`
//! crate (0.7): field polynomial 0x11d, generator 2; a share is
//! `[x] || f_0(x) || … || f_{L-1}(x)`; the dealer hands out x = 1, 2, …, n.
//!
//! Unlike blahaj, recovery is strict: it refuses x = 0, duplicate x, shares of
//! different lengths, and fewer than the threshold — a duplicated share would
//! otherwise silently corrupt the secret. Extra shares beyond the threshold
//! must agree with the polynomial the first `t` define
//! (`recover_checked`), so an inconsistent share is detected, not ignored.

use zeroize::Zeroizing;

/// Multiplication in GF(2^8) mod x^8 + x^4 + x^3 + x^2 + 1 (0x11d), in
/// constant time: a fixed eight rounds of shift-and-add with masks instead
/// of branches or table look-ups, so neither the time taken nor the memory
/// touched depends on the bytes of a secret or a share.
fn mul(a: u8, b: u8) -> u8 {
    let (mut a, mut b, mut p) = (a, b, 0u8);
    for _ in 0..8 {
        p ^= a & 0u8.wrapping_sub(b & 1);
        let carry = 0u8.wrapping_sub(a >> 7);
        a = (a << 1) ^ (0x1d & carry);
        b >>= 1;
    }
    p
}

/// The multiplicative inverse, as `a^254` by a fixed chain of squarings and
/// multiplications (constant time; 0 for 0).
fn inv(a: u8) -> u8 {
    let a2 = mul(a, a);
    let a3 = mul(a2, a);
    let a6 = mul(a3, a3);
    let a12 = mul(a6, a6);
    let a15 = mul(a12, a3);
    let a30 = mul(a15, a15);
    let a60 = mul(a30, a30);
    let a120 = mul(a60, a60);
    let a127 = mul(a120, mul(a6, a));
    mul(a127, a127)
}

fn div(a: u8, b: u8) -> u8 {
    // Only ever divided by differences of the shares' x, which are public.
    assert!(b != 0, "division by zero in GF(256)");
    mul(a, inv(b))
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ShamirError {
    #[error("threshold must be at least 2 and at most the number of shares (≤ 255)")]
    Parameters,
    #[error("a share must be at least 2 bytes")]
    ShareTooShort,
    #[error("shares have different lengths")]
    LengthMismatch,
    #[error("a share has x = 0")]
    ZeroX,
    #[error("two shares have the same x")]
    DuplicateX,
    #[error("need {need} shares, got {got}")]
    NotEnough { need: usize, got: usize },
    #[error("the shares are inconsistent (do not lie on one polynomial)")]
    Inconsistent,
}

/// Evaluates the polynomial with `coeffs` (highest degree first, constant
/// last) at `x`, by Horner's rule — blahaj's order.
fn eval(coeffs: &[u8], x: u8) -> u8 {
    coeffs.iter().fold(0u8, |acc, &c| mul(acc, x) ^ c)
}

/// Splits `secret` into `n` shares, any `t` of which recover it, with the
/// given coefficient source (`coeff(byte_index)` → t−1 coefficients, highest
/// degree first). Exposed for test vectors; use [`split`].
pub fn split_with(
    secret: &[u8],
    t: usize,
    n: usize,
    mut coeff: impl FnMut(usize) -> Vec<u8>,
) -> Result<Vec<Vec<u8>>, ShamirError> {
    if t < 2 || t > n || n > 255 {
        return Err(ShamirError::Parameters);
    }
    let mut shares: Vec<Vec<u8>> = (1..=n).map(|x| vec![x as u8]).collect();
    for (i, &s) in secret.iter().enumerate() {
        let mut poly = Zeroizing::new(coeff(i));
        assert_eq!(poly.len(), t - 1, "t−1 coefficients per byte");
        poly.push(s);
        for share in shares.iter_mut() {
            let x = share[0];
            share.push(eval(&poly, x));
        }
    }
    Ok(shares)
}

/// Splits with fresh random coefficients from the OS generator.
pub fn split(secret: &[u8], t: usize, n: usize) -> Result<Vec<Zeroizing<Vec<u8>>>, ShamirError> {
    let shares = split_with(secret, t, n, |_| {
        let mut c = vec![0u8; t - 1];
        openssl::rand::rand_bytes(&mut c).expect("OS random generator");
        c
    })?;
    Ok(shares.into_iter().map(Zeroizing::new).collect())
}

fn validate(shares: &[&[u8]]) -> Result<usize, ShamirError> {
    let len = shares.first().map(|s| s.len()).unwrap_or(0);
    let mut seen = [false; 256];
    for s in shares {
        if s.len() < 2 {
            return Err(ShamirError::ShareTooShort);
        }
        if s.len() != len {
            return Err(ShamirError::LengthMismatch);
        }
        if s[0] == 0 {
            return Err(ShamirError::ZeroX);
        }
        if std::mem::replace(&mut seen[s[0] as usize], true) {
            return Err(ShamirError::DuplicateX);
        }
    }
    Ok(len)
}

/// Lagrange interpolation at `at` over exactly the given shares.
fn interpolate(shares: &[&[u8]], at: u8, len: usize) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(vec![0u8; len - 1]);
    for (i, si) in shares.iter().enumerate() {
        let xi = si[0];
        let mut basis = 1u8;
        for (j, sj) in shares.iter().enumerate() {
            if i != j {
                let xj = sj[0];
                basis = mul(basis, div(xj ^ at, xj ^ xi));
            }
        }
        for (o, &y) in out.iter_mut().zip(&si[1..]) {
            *o ^= mul(y, basis);
        }
    }
    out
}

/// Recovers the secret from at least `t` shares: interpolates over the first
/// `t` and checks that every further share lies on the same polynomial.
pub fn recover_checked(t: usize, shares: &[&[u8]]) -> Result<Zeroizing<Vec<u8>>, ShamirError> {
    if t < 2 {
        return Err(ShamirError::Parameters);
    }
    let len = validate(shares)?;
    if shares.len() < t {
        return Err(ShamirError::NotEnough {
            need: t,
            got: shares.len(),
        });
    }
    let base = &shares[..t];
    for extra in &shares[t..] {
        if interpolate(base, extra[0], len).as_slice() != &extra[1..] {
            return Err(ShamirError::Inconsistent);
        }
    }
    Ok(interpolate(base, 0, len))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The log/exp tables blahaj multiplies with (generator 2, 0x11d).
    fn tables() -> ([u8; 512], [u8; 256]) {
        let (mut exp, mut log) = ([0u8; 512], [0u8; 256]);
        let mut v: u16 = 1;
        for i in 0..255 {
            exp[i] = v as u8;
            exp[i + 255] = v as u8;
            log[v as usize] = i as u8;
            v <<= 1;
            if v & 0x100 != 0 {
                v ^= 0x11d;
            }
        }
        (exp, log)
    }

    #[test]
    fn constant_time_arithmetic_matches_blahajs_tables_everywhere() {
        let (exp, log) = tables();
        // blahaj's EXP_TABLE starts 01 02 04 08 10 20 40 80 1d 3a …
        assert_eq!(
            &exp[..10],
            &[0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0x1d, 0x3a]
        );
        for a in 0..=255u8 {
            for b in 0..=255u8 {
                let want = if a == 0 || b == 0 {
                    0
                } else {
                    exp[log[a as usize] as usize + log[b as usize] as usize]
                };
                assert_eq!(mul(a, b), want, "{a} · {b}");
            }
            if a != 0 {
                assert_eq!(mul(a, inv(a)), 1, "inverse of {a}");
                assert_eq!(div(1, a), exp[255 - log[a as usize] as usize], "1 / {a}");
            }
        }
        assert_eq!(inv(0), 0);
    }

    #[test]
    fn any_t_of_n_recover_and_fewer_do_not() {
        let secret = crate::crypto::random_bytes::<32>();
        let shares = split(&secret, 3, 5).unwrap();
        let r: Vec<&[u8]> = vec![&shares[4], &shares[0], &shares[2]];
        assert_eq!(recover_checked(3, &r).unwrap().as_slice(), &secret);
        let all: Vec<&[u8]> = shares.iter().map(|s| s.as_slice()).collect();
        assert_eq!(recover_checked(3, &all).unwrap().as_slice(), &secret);
        assert_eq!(
            recover_checked(3, &all[..2]).unwrap_err(),
            ShamirError::NotEnough { need: 3, got: 2 }
        );
    }

    #[test]
    fn duplicates_zero_x_and_tampered_shares_are_refused() {
        let shares = split(b"bid master key", 2, 3).unwrap();
        let dup: Vec<&[u8]> = vec![&shares[0], &shares[0], &shares[1]];
        assert_eq!(
            recover_checked(2, &dup).unwrap_err(),
            ShamirError::DuplicateX
        );
        let mut zero = shares[0].to_vec();
        zero[0] = 0;
        assert_eq!(
            recover_checked(2, &[&zero, &shares[1]]).unwrap_err(),
            ShamirError::ZeroX
        );
        let mut bad = shares[2].to_vec();
        bad[3] ^= 1;
        assert_eq!(
            recover_checked(2, &[&shares[0], &shares[1], &bad]).unwrap_err(),
            ShamirError::Inconsistent
        );
        assert_eq!(split(b"x", 1, 3).unwrap_err(), ShamirError::Parameters);
        assert_eq!(split(b"x", 4, 3).unwrap_err(), ShamirError::Parameters);
    }
}
