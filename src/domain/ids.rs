//! Newtyped identifiers. Each is an opaque string with a readable prefix
//! (`sec_…`, `org_…`) over 16 random bytes, so ids of different kinds cannot be
//! mixed up in code or confused in logs, and they never leak counts (unlike
//! sequential integers, which would reveal how many bids a section has).

use std::fmt;

use rand::RngCore;
use serde::{Deserialize, Serialize};

fn random_suffix() -> String {
    let mut b = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut b);
    hex::encode(b)
}

macro_rules! id_type {
    ($(#[$m:meta])* $name:ident, $prefix:literal) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub const PREFIX: &'static str = $prefix;
            pub fn new() -> Self {
                Self(format!("{}_{}", $prefix, random_suffix()))
            }
            /// Wraps a stored id (database rows, path segments). Shape is not
            /// checked: an unknown id simply finds nothing.
            pub fn from_db(s: String) -> Self {
                Self(s)
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        /// Maps keyed by id can be looked up by the id's text.
        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                id_schema(concat!("^", $prefix, "_[0-9a-f]+$"), concat!("an id (`", $prefix, "_…`)"))
            }
        }

        impl utoipa::ToSchema for $name {
            fn name() -> std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }
        }
    };
}

/// How an id is described in the API: an opaque string with its prefix.
fn id_schema(pattern: &str, what: &str) -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .pattern(Some(pattern))
        .description(Some(what))
        .into()
}

id_type!(OrgId, "org");
id_type!(UserId, "usr");
id_type!(ProjectId, "prj");
id_type!(SectionId, "sec");
id_type!(DocumentId, "doc");
id_type!(AmendmentId, "amd");
id_type!(KeyId, "key");
id_type!(ChallengeId, "chl");
id_type!(JobId, "job");
id_type!(MailId, "mail");
id_type!(AuditId, "aud");
id_type!(RegistrationId, "reg");
id_type!(SubmissionId, "sub");
id_type!(LateId, "late");
id_type!(IncidentId, "inc");
id_type!(ObjectionId, "obj");
id_type!(SigninId, "sgn");
id_type!(ClarificationId, "clr");
id_type!(PublicityObjectionId, "pob");

/// An expert of a centre's pool. The centre assigns it (the pool's CSV
/// `id` column), so it has no prefix of kaibiao's and is never generated.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ExpertId(String);

impl ExpertId {
    pub fn from_db(s: String) -> Self {
        Self(s)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for ExpertId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl utoipa::PartialSchema for ExpertId {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        id_schema(
            "^[A-Za-z0-9_-]{1,40}$",
            "an expert's id in its centre's pool",
        )
    }
}

impl utoipa::ToSchema for ExpertId {
    fn name() -> std::borrow::Cow<'static, str> {
        "ExpertId".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_carry_their_prefix_and_are_unique() {
        let a = SectionId::new();
        let b = SectionId::new();
        assert!(a.as_str().starts_with("sec_"));
        assert_eq!(a.as_str().len(), 4 + 32);
        assert_ne!(a, b);
    }
}
