//! Instants are UTC milliseconds since the Unix epoch everywhere inside kaibiao:
//! in the database (BIGINT), in the protocol (JSON integers) and in the API
//! (RFC 3339 strings alongside). They are shown in Asia/Shanghai (UTC+8, no
//! daylight saving since 1991) only at the edge.

use std::fmt;

use chrono::{DateTime, FixedOffset, SecondsFormat, TimeZone, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

/// Asia/Shanghai: a fixed UTC+08:00 offset.
pub fn shanghai() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).expect("valid offset")
}

impl Timestamp {
    pub const fn from_millis(ms: i64) -> Self {
        Self(ms)
    }
    pub const fn millis(self) -> i64 {
        self.0
    }
    pub fn to_utc(self) -> DateTime<Utc> {
        Utc.timestamp_millis_opt(self.0)
            .single()
            .unwrap_or(DateTime::<Utc>::MIN_UTC)
    }
    /// RFC 3339 in UTC with milliseconds, e.g. `2026-12-20T01:30:00.000Z`.
    pub fn rfc3339(self) -> String {
        self.to_utc().to_rfc3339_opts(SecondsFormat::Millis, true)
    }
    /// RFC 3339 in Asia/Shanghai, e.g. `2026-12-20T09:30:00.000+08:00`.
    pub fn shanghai_rfc3339(self) -> String {
        self.to_utc()
            .with_timezone(&shanghai())
            .to_rfc3339_opts(SecondsFormat::Millis, false)
    }
    /// Parses RFC 3339 with any offset; the instant is kept, the offset dropped.
    pub fn parse_rfc3339(s: &str) -> Option<Self> {
        DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|d| Self(d.timestamp_millis()))
    }
    pub fn plus(self, d: chrono::Duration) -> Self {
        Self(self.0.saturating_add(d.num_milliseconds()))
    }
    pub fn minus(self, d: chrono::Duration) -> Self {
        Self(self.0.saturating_sub(d.num_milliseconds()))
    }
    pub fn since(self, earlier: Timestamp) -> chrono::Duration {
        chrono::Duration::milliseconds(self.0 - earlier.0)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.rfc3339())
    }
}

/// On the wire an instant is an RFC 3339 string; on input any offset is
/// accepted (`2026-12-20T09:30:00+08:00` and `2026-12-20T01:30:00Z` are equal).
impl utoipa::PartialSchema for Timestamp {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                utoipa::openapi::KnownFormat::DateTime,
            )))
            .description(Some("RFC 3339; UTC with milliseconds on output"))
            .into()
    }
}

impl utoipa::ToSchema for Timestamp {
    fn name() -> std::borrow::Cow<'static, str> {
        "Timestamp".into()
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.rfc3339())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Timestamp::parse_rfc3339(&s).ok_or_else(|| {
            serde::de::Error::custom(
                "expected an RFC 3339 date-time such as 2026-12-20T09:30:00+08:00",
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shanghai_and_utc_name_the_same_instant() {
        let a = Timestamp::parse_rfc3339("2026-12-20T09:30:00+08:00").unwrap();
        let b = Timestamp::parse_rfc3339("2026-12-20T01:30:00Z").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.rfc3339(), "2026-12-20T01:30:00.000Z");
        assert_eq!(a.shanghai_rfc3339(), "2026-12-20T09:30:00.000+08:00");
        assert!(Timestamp::parse_rfc3339("2026-12-20 09:30").is_none());
    }
}
