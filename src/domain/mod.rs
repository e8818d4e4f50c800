//! Pure rules: identifiers, time, money, identities, sections, evaluation.
//! Nothing here knows about HTTP or the database.

pub mod credit_code;
pub mod decimal;
pub mod enums;
pub mod evaluation;
pub mod identity;
pub mod ids;
pub mod problems;
pub mod section;
pub mod time;
