//! RFC 8785 JSON Canonicalization Scheme (JCS).
//!
//! - Objects: members sorted by their keys' UTF-16 code units, no whitespace.
//! - Strings: as ECMAScript `JSON.stringify` writes them (only `"`, `\`, and
//!   control characters are escaped; `\b \t \n \f \r` short forms, others as
//!   lower-case `\u00xx`).
//! - Numbers: as ECMAScript `Number.prototype.toString` writes an IEEE 754
//!   double (the shortest round-tripping digits). kaibiao's own documents
//!   carry only integers (money and points are strings), but the canonicaliser
//!   is complete so that it passes the RFC's vectors and any verifier agrees.

use serde::Serialize;
use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum JcsError {
    #[error("JSON numbers must be finite")]
    NonFinite,
    #[error("value cannot be represented as JSON: {0}")]
    Serialize(#[from] serde_json::Error),
}

/// Canonical bytes of any serialisable value.
pub fn to_vec<T: Serialize + ?Sized>(v: &T) -> Result<Vec<u8>, JcsError> {
    let value = serde_json::to_value(v)?;
    let mut out = Vec::with_capacity(256);
    write_value(&value, &mut out)?;
    Ok(out)
}

/// Canonical bytes of a JSON value.
pub fn canonicalize(v: &Value) -> Result<Vec<u8>, JcsError> {
    let mut out = Vec::with_capacity(256);
    write_value(v, &mut out)?;
    Ok(out)
}

fn write_value(v: &Value, out: &mut Vec<u8>) -> Result<(), JcsError> {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => write_number(n, out)?,
        Value::String(s) => write_string(s, out),
        Value::Array(a) => {
            out.push(b'[');
            for (i, item) in a.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(item, out)?;
            }
            out.push(b']');
        }
        Value::Object(m) => {
            let mut entries: Vec<(&String, &Value)> = m.iter().collect();
            entries.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
            out.push(b'{');
            for (i, (k, val)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(k, out);
                out.push(b':');
                write_value(val, out)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

fn write_string(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    for ch in s.chars() {
        match ch {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\u{8}' => out.extend_from_slice(b"\\b"),
            '\t' => out.extend_from_slice(b"\\t"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\u{c}' => out.extend_from_slice(b"\\f"),
            '\r' => out.extend_from_slice(b"\\r"),
            c if (c as u32) < 0x20 => {
                out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes());
            }
            c => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out.push(b'"');
}

const MAX_SAFE: u64 = 1 << 53;

fn write_number(n: &serde_json::Number, out: &mut Vec<u8>) -> Result<(), JcsError> {
    // Integers a double holds exactly print as themselves; anything else goes
    // through the double, as a JavaScript parser would.
    if let Some(u) = n.as_u64().filter(|&u| u <= MAX_SAFE) {
        out.extend_from_slice(u.to_string().as_bytes());
        return Ok(());
    }
    if let Some(i) = n.as_i64().filter(|&i| i.unsigned_abs() <= MAX_SAFE) {
        out.extend_from_slice(i.to_string().as_bytes());
        return Ok(());
    }
    let f = n.as_f64().ok_or(JcsError::NonFinite)?;
    out.extend_from_slice(es6_number(f)?.as_bytes());
    Ok(())
}

/// ECMAScript `Number::toString(x)` (ECMA-262 §6.1.6.1.20) for a double:
/// the shortest round-tripping digits, ties to even, and the ECMAScript
/// choice between plain and exponent notation (`ryu-js` does exactly this).
pub fn es6_number(x: f64) -> Result<String, JcsError> {
    if !x.is_finite() {
        return Err(JcsError::NonFinite);
    }
    Ok(ryu_js::Buffer::new().format_finite(x).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_cases() {
        let v: Value = serde_json::from_str(
            r#"{"b":[1,2.5,-0.0],"a":"\u00e9\n","€":1e21,"\ud83d\ude00":1e-7}"#,
        )
        .unwrap();
        let got = String::from_utf8(canonicalize(&v).unwrap()).unwrap();
        assert_eq!(
            got,
            "{\"a\":\"é\\n\",\"b\":[1,2.5,0],\"€\":1e+21,\"😀\":1e-7}"
        );
    }

    #[test]
    fn utf16_order_differs_from_utf8_order() {
        // U+FB01 sorts after U+1F600 in UTF-8 but before it in UTF-16
        // (0xFB01 < 0xD83D is false: 0xD83D < 0xFB01), so the emoji comes first.
        let v: Value = serde_json::from_str(r#"{"\ufb01":1,"\ud83d\ude00":2}"#).unwrap();
        let got = String::from_utf8(canonicalize(&v).unwrap()).unwrap();
        assert_eq!(got, "{\"😀\":2,\"ﬁ\":1}");
    }
}
