//! Fixed-point decimals: money in fen (分), evaluation points in hundredths,
//! ratios (such as the K coefficient of a price formula) in ten-thousandths.
//! Never floats. On the wire both are decimal
//! strings (`"1234567.80"`); JSON numbers are refused so that no client ever
//! rounds a price through a binary float.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecimalError {
    #[error("expected a decimal string such as \"1234.50\"")]
    Syntax,
    #[error("too many digits after the decimal point")]
    Precision,
    #[error("number too large")]
    Overflow,
    #[error("must not be negative")]
    Negative,
}

/// Parses `[-]digits[.fraction]` with at most `scale` fractional digits into
/// an integer count of `10^-scale` units.
fn parse_scaled(s: &str, scale: u32) -> Result<i64, DecimalError> {
    let (neg, body) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (int, frac) = match body.split_once('.') {
        Some((i, f)) => (i, f),
        None => (body, ""),
    };
    if int.is_empty()
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
        || (body.contains('.') && frac.is_empty())
    {
        return Err(DecimalError::Syntax);
    }
    if frac.len() > scale as usize {
        return Err(DecimalError::Precision);
    }
    let int: i64 = int.parse().map_err(|_| DecimalError::Overflow)?;
    let f: i64 = if frac.is_empty() {
        0
    } else {
        frac.parse::<i64>().map_err(|_| DecimalError::Syntax)?
            * 10i64.pow(scale - frac.len() as u32)
    };
    let v = int
        .checked_mul(10i64.pow(scale))
        .and_then(|v| v.checked_add(f))
        .ok_or(DecimalError::Overflow)?;
    Ok(if neg { -v } else { v })
}

fn format_scaled(v: i64, scale: u32, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let sign = if v < 0 { "-" } else { "" };
    let a = v.unsigned_abs();
    let unit = 10u64.pow(scale);
    write!(
        f,
        "{sign}{}.{:0width$}",
        a / unit,
        a % unit,
        width = scale as usize
    )
}

macro_rules! fixed {
    ($(#[$m:meta])* $name:ident, $scale:literal, $unit:ident, $allow_negative:expr) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        pub struct $name(i64);

        impl $name {
            pub const ZERO: Self = Self(0);
            /// Units per whole (100 for two fractional digits).
            pub const SCALE: i64 = 10i64.pow($scale);
            pub fn parse(s: &str) -> Result<Self, DecimalError> {
                let v = parse_scaled(s.trim(), $scale)?;
                if v < 0 && !$allow_negative {
                    return Err(DecimalError::Negative);
                }
                Ok(Self(v))
            }
            pub const fn $unit(v: i64) -> Self {
                Self(v)
            }
            /// The value as an integer count of the smallest unit.
            pub const fn units(self) -> i64 {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                format_scaled(self.0, $scale, f)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl serde::de::Visitor<'_> for V {
                    type Value = $name;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str("a decimal string such as \"1234.50\" (never a JSON number)")
                    }
                    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<$name, E> {
                        $name::parse(s).map_err(E::custom)
                    }
                }
                d.deserialize_str(V)
            }
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                let sign = if $allow_negative { "-?" } else { "" };
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .pattern(Some(format!("^{sign}[0-9]+(\\.[0-9]{{1,{}}})?$", $scale)))
                    .description(Some(concat!(
                        "a decimal string with at most ", $scale,
                        " fractional digits, never a JSON number"
                    )))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {
            fn name() -> std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }
        }
    };
}

fixed!(
    /// An amount of Chinese yuan held as integer fen (1 yuan = 100 fen).
    Money,
    2,
    from_fen,
    false
);
fixed!(
    /// Evaluation points held as integer hundredths of a point.
    Points,
    2,
    from_hundredths,
    true
);
fixed!(
    /// A non-negative ratio held in ten-thousandths (`"0.9750"` = 9750).
    Ratio,
    4,
    from_ten_thousandths,
    false
);

impl Money {
    pub const fn fen(self) -> i64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_exactly() {
        assert_eq!(Money::parse("1234567.8").unwrap().fen(), 123_456_780);
        assert_eq!(Money::parse("0.05").unwrap().to_string(), "0.05");
        assert_eq!(Money::parse("12").unwrap().to_string(), "12.00");
        assert_eq!(Points::parse("-1.5").unwrap().to_string(), "-1.50");
        assert_eq!(Ratio::parse("0.975").unwrap().units(), 9750);
        assert_eq!(Ratio::parse("1").unwrap().to_string(), "1.0000");
        assert_eq!(Ratio::parse("0.12345"), Err(DecimalError::Precision));
    }

    #[test]
    fn refuses_what_is_not_an_exact_amount() {
        for bad in [
            "", ".5", "1.", "1.234", "1e5", "0x10", "1,000", "１２", "- 1",
        ] {
            assert!(Money::parse(bad).is_err(), "{bad:?} should be refused");
        }
        assert_eq!(Money::parse("-1"), Err(DecimalError::Negative));
        assert_eq!(
            Money::parse("99999999999999999999"),
            Err(DecimalError::Overflow)
        );
        let as_number: Result<Money, _> = serde_json::from_str("1234.5");
        assert!(
            as_number.is_err(),
            "a JSON number must not be accepted as money"
        );
    }
}
