//! 统一社会信用代码 — the unified social credit code (GB 32100-2015).
//!
//! 18 characters from the 31-symbol alphabet `0-9 A-H J-N P-R T U W-Y` (no I,
//! O, Z, S, V):
//! - 1: registration authority (登记管理部门代码),
//! - 2: organisation type (机构类别代码),
//! - 3–8: administrative division (登记管理机关行政区划码, six digits),
//! - 9–17: organisation code (主体标识码),
//! - 18: check character: `C18 = 31 − (Σ Ci·Wi mod 31)`, `Wi = 3^(i−1) mod 31`,
//!   with 31 written as `0`.

use std::fmt;

use serde::{Deserialize, Serialize};

const ALPHABET: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
const WEIGHTS: [u32; 17] = [
    1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
];
/// Registration authorities defined by the standard (1 机构编制 … 9 工商, A 中央军委, N 农业, Y 其他).
const AUTHORITIES: &[u8] = b"123456789ANY";

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct CreditCode(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CreditCodeError {
    #[error("must be exactly 18 characters, got {0}")]
    Length(usize),
    #[error("character {pos} ('{ch}') is not allowed (allowed: 0-9 and A-H J-N P-R T U W-Y)")]
    Character { pos: usize, ch: char },
    #[error("character 1 ('{0}') is not a registration authority code")]
    Authority(char),
    #[error("characters 3-8 must be the six-digit administrative division code")]
    Division,
    #[error("check character is '{found}', expected '{expected}'")]
    CheckDigit { found: char, expected: char },
}

fn value(c: u8) -> Option<u32> {
    ALPHABET.iter().position(|&a| a == c).map(|p| p as u32)
}

/// The check character for the first 17 characters (which must be valid symbols).
pub fn check_char(first17: &[u8]) -> Option<char> {
    if first17.len() != 17 {
        return None;
    }
    let mut sum = 0u32;
    for (c, w) in first17.iter().zip(WEIGHTS) {
        sum += value(*c)? * w;
    }
    let check = (31 - sum % 31) % 31;
    Some(ALPHABET[check as usize] as char)
}

impl CreditCode {
    /// Accepts surrounding whitespace and lower-case letters; stores upper case.
    pub fn parse(input: &str) -> Result<Self, CreditCodeError> {
        let s = input.trim().to_ascii_uppercase();
        let chars = s.chars().count();
        if chars != 18 {
            return Err(CreditCodeError::Length(chars));
        }
        for (i, ch) in s.chars().enumerate() {
            if !ch.is_ascii() || value(ch as u8).is_none() {
                return Err(CreditCodeError::Character { pos: i + 1, ch });
            }
        }
        let b = s.as_bytes();
        if !AUTHORITIES.contains(&b[0]) {
            return Err(CreditCodeError::Authority(b[0] as char));
        }
        if !b[2..8].iter().all(u8::is_ascii_digit) {
            return Err(CreditCodeError::Division);
        }
        let expected = check_char(&b[..17]).expect("validated symbols");
        if b[17] as char != expected {
            return Err(CreditCodeError::CheckDigit {
                found: b[17] as char,
                expected,
            });
        }
        Ok(Self(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CreditCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for CreditCode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        CreditCode::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_codes_validate() {
        // The standard's worked example and codes printed on public business licences.
        for code in [
            "91350100M000100Y43",
            "9144030071526726XG",
            "91330100716105852F",
            "914403001922038216",
        ] {
            CreditCode::parse(code).unwrap_or_else(|e| panic!("{code}: {e}"));
        }
        assert_eq!(
            CreditCode::parse(" 91350100m000100y43 ").unwrap().as_str(),
            "91350100M000100Y43"
        );
    }

    #[test]
    fn every_wrong_check_character_is_refused() {
        let body = "91350100M000100Y4";
        let ok = check_char(body.as_bytes()).unwrap();
        assert_eq!(ok, '3');
        for &c in ALPHABET.iter().filter(|&&c| c as char != ok) {
            let code = format!("{body}{}", c as char);
            assert!(matches!(
                CreditCode::parse(&code),
                Err(CreditCodeError::CheckDigit { expected: '3', .. })
            ));
        }
    }

    #[test]
    fn malformed_codes_say_why() {
        assert_eq!(
            CreditCode::parse("9135010"),
            Err(CreditCodeError::Length(7))
        );
        assert!(matches!(
            CreditCode::parse("91350100I000100Y43"),
            Err(CreditCodeError::Character { pos: 9, ch: 'I' })
        ));
        assert!(matches!(
            CreditCode::parse("B1350100M000100Y43"),
            Err(CreditCodeError::Authority('B'))
        ));
        assert!(matches!(
            CreditCode::parse("913A0100M000100Y43"),
            Err(CreditCodeError::Division)
        ));
        assert!(matches!(
            CreditCode::parse("统一社会信用代码统一社会信用代码统一"),
            Err(CreditCodeError::Character { pos: 1, ch: '统' })
        ));
    }
}
