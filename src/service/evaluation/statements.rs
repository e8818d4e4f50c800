//! The one check every statement an expert signs goes through: it is for
//! this section, it names a member the room admitted, and it is signed with
//! the key of that member's pass.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::db::evaluation::{self as repo, SeatRow};
use crate::db::DbConn;
use crate::domain::ids::{ExpertId, SectionId};
use crate::domain::states::SeatStatus;
use crate::error::{AppError, AppResult, ErrorCode};
use crate::evaluation::statements::{verify_statement, ExpertStatement};

/// A statement signed by an admitted expert.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signed<T> {
    pub statement: T,
    /// Ed25519, hex, by the key of the expert's pass.
    pub signature: String,
}

// Described by hand so that each statement's signed form has its own name
// (`SignedVoteStatement`, …) and brings its statement along.
impl<T: ToSchema> utoipa::PartialSchema for Signed<T> {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::{schema::Type, ObjectBuilder, Ref};
        ObjectBuilder::new()
            .property("statement", Ref::from_schema_name(T::name()))
            .required("statement")
            .property(
                "signature",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .description(Some("Ed25519, hex, by the key of the expert's pass")),
            )
            .required("signature")
            .into()
    }
}

impl<T: ToSchema> ToSchema for Signed<T> {
    fn name() -> std::borrow::Cow<'static, str> {
        format!("Signed{}", T::name()).into()
    }
    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        schemas.push((T::name().into(), T::schema()));
        T::schemas(schemas);
    }
}

pub(super) fn bad_signature() -> AppError {
    AppError::new(
        ErrorCode::ProofInvalid,
        "the signature does not verify with the key of the expert's pass",
    )
}

fn not_admitted() -> AppError {
    AppError::new(
        ErrorCode::PassRejected,
        "the statement names no admitted member of this committee",
    )
}

/// The seat of an admitted member.
pub(super) fn admitted_seat(
    c: &mut DbConn,
    section_id: &SectionId,
    expert_id: &ExpertId,
) -> AppResult<SeatRow> {
    repo::seat(c, section_id, expert_id)?
        .filter(|s| s.status == SeatStatus::Confirmed && s.expert_key.is_some())
        .ok_or_else(not_admitted)
}

/// Checks a statement signed with `key`; returns its canonical text.
pub(super) fn verified<T: Serialize>(
    key: &str,
    label: &str,
    st: &T,
    sig: &str,
) -> AppResult<String> {
    verify_statement(key, label, st, sig).map_err(|_| bad_signature())
}

/// A statement for this section, by an admitted member, signed with the key
/// of the member's pass: the member's seat and the statement's canonical text.
pub(super) fn signed_by_member<T: ExpertStatement>(
    c: &mut DbConn,
    section_id: &SectionId,
    v: &Signed<T>,
) -> AppResult<(SeatRow, String)> {
    if v.statement.section_id() != section_id.as_str() {
        return Err(AppError::invalid_field(
            "statement.section_id",
            "another section",
        ));
    }
    let expert = ExpertId::from_db(v.statement.expert_id().to_string());
    let seat = admitted_seat(c, section_id, &expert)?;
    let text = verified(
        seat.expert_key.as_deref().unwrap_or_default(),
        T::LABEL,
        &v.statement,
        &v.signature,
    )?;
    Ok((seat, text))
}
