//! Pure rules: identifiers, time, money, identities, sections, evaluation.
//! Nothing here knows about HTTP or the database. The types describe
//! themselves for the API description (`utoipa::ToSchema`): a description,
//! not behaviour.

pub mod credit_code;
pub mod decimal;
pub mod enums;
pub mod evaluation;
pub mod identity;
pub mod ids;
pub mod opaque;
pub mod problems;
pub mod section;
pub mod states;
pub mod time;
