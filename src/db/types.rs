//! How the domain's typed ids and closed sets are stored: as TEXT, on both
//! backends. The domain types know nothing of diesel; this file teaches
//! diesel about them (through `foreign_derive` proxies, as diesel does for
//! the standard types), so a row field can be a `SectionId` or a
//! `SectionState` and a value outside the set read back from the database
//! is a deserialisation error, never a silently wrong string.

use diesel::backend::Backend;
use diesel::deserialize::{self, FromSql};
use diesel::pg::Pg;
use diesel::serialize::{self, IsNull, Output, ToSql};
use diesel::sql_types::Text;
use diesel::sqlite::Sqlite;

use super::MultiBackend;

/// A type stored as TEXT: how it is written and read back.
pub trait TextColumn: Sized {
    fn to_text(&self) -> &str;
    fn from_text(s: String) -> Result<Self, Box<dyn std::error::Error + Send + Sync>>;
}

macro_rules! text_columns {
    ($($t:ty),+ $(,)?) => {$(
        const _: () = {
            #[derive(diesel::expression::AsExpression, diesel::deserialize::FromSqlRow)]
            #[diesel(foreign_derive)]
            #[diesel(sql_type = Text)]
            #[allow(dead_code)]
            struct Proxy($t);
        };

        impl ToSql<Text, Sqlite> for $t {
            fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
                <str as ToSql<Text, Sqlite>>::to_sql(TextColumn::to_text(self), out)
            }
        }
        impl ToSql<Text, Pg> for $t {
            fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
                <str as ToSql<Text, Pg>>::to_sql(TextColumn::to_text(self), out)
            }
        }
        impl ToSql<Text, MultiBackend> for $t {
            fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, MultiBackend>) -> serialize::Result {
                out.set_value((Text, self));
                Ok(IsNull::No)
            }
        }
        impl FromSql<Text, Sqlite> for $t {
            fn from_sql(bytes: <Sqlite as Backend>::RawValue<'_>) -> deserialize::Result<Self> {
                TextColumn::from_text(<String as FromSql<Text, Sqlite>>::from_sql(bytes)?)
            }
        }
        impl FromSql<Text, Pg> for $t {
            fn from_sql(bytes: <Pg as Backend>::RawValue<'_>) -> deserialize::Result<Self> {
                TextColumn::from_text(<String as FromSql<Text, Pg>>::from_sql(bytes)?)
            }
        }
        impl FromSql<Text, MultiBackend> for $t {
            fn from_sql(bytes: <MultiBackend as Backend>::RawValue<'_>) -> deserialize::Result<Self> {
                bytes.from_sql::<$t, Text>()
            }
        }
    )+};
}

/// Typed ids: any stored text is an id (an unknown one finds nothing).
macro_rules! id_columns {
    ($($t:ident),+ $(,)?) => {
        $(impl TextColumn for crate::domain::ids::$t {
            fn to_text(&self) -> &str {
                self.as_str()
            }
            fn from_text(s: String) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
                Ok(Self::from_db(s))
            }
        })+
        text_columns!($(crate::domain::ids::$t),+);
    };
}

/// Closed sets: a stored value outside the set is an error.
macro_rules! enum_columns {
    ($($t:path),+ $(,)?) => {
        $(impl TextColumn for $t {
            fn to_text(&self) -> &str {
                self.as_str()
            }
            fn from_text(s: String) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
                Ok(<$t>::from_db(&s)?)
            }
        })+
        text_columns!($($t),+);
    };
}

id_columns!(
    OrgId,
    UserId,
    ProjectId,
    SectionId,
    DocumentId,
    AmendmentId,
    KeyId,
    ChallengeId,
    JobId,
    MailId,
    AuditId,
    RegistrationId,
    SubmissionId,
    LateId,
    IncidentId,
    ObjectionId,
    SigninId,
    ExpertId,
    ClarificationId,
    PublicityObjectionId,
);

enum_columns!(
    crate::domain::section::SectionState,
    crate::domain::section::Category,
    crate::domain::section::DecryptionMode,
    crate::domain::section::AmendmentKind,
    crate::domain::identity::OrgKind,
    crate::domain::identity::Role,
    crate::domain::identity::KeyPurpose,
    crate::domain::identity::KeyAlgorithm,
    crate::domain::states::SubmissionState,
    crate::domain::states::BidStatus,
    crate::domain::states::LateStage,
    crate::domain::states::OpeningStatus,
    crate::domain::states::Fault,
    crate::domain::states::DecryptedVia,
    crate::domain::states::EvaluationPhase,
    crate::domain::states::SeatStatus,
    crate::domain::states::JobKind,
    crate::domain::states::JobState,
    crate::domain::states::MailState,
);
