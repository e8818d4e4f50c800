//! What the accounts API takes and answers.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::db::identity::{OrgRow, UserRow};
use crate::domain::identity::{OrgKind, Role};
use crate::domain::ids::{OrgId, UserId};
use crate::domain::time::Timestamp;

/// An organisation: a bidder company, a trading centre, an agent, a
/// tenderer, a regulator or a notary office.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OrgView {
    pub id: OrgId,
    pub kind: OrgKind,
    pub name: String,
    /// 统一社会信用代码.
    pub credit_code: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub centre_code: Option<String>,
    pub created_at: Timestamp,
}

impl From<OrgRow> for OrgView {
    fn from(r: OrgRow) -> Self {
        Self {
            id: r.id,
            kind: r.kind,
            name: r.name,
            credit_code: r.credit_code,
            centre_code: r.centre_code,
            created_at: Timestamp::from_millis(r.created_at),
        }
    }
}

/// A user account.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UserView {
    pub id: UserId,
    pub org_id: Option<OrgId>,
    pub username: String,
    pub email: String,
    pub display_name: String,
    pub role: Role,
    pub email_verified: bool,
    pub disabled: bool,
    pub created_at: Timestamp,
}

impl From<UserRow> for UserView {
    fn from(r: UserRow) -> Self {
        Self {
            id: r.id,
            org_id: r.org_id,
            username: r.username,
            email: r.email,
            display_name: r.display_name,
            role: r.role,
            email_verified: r.email_verified_at.is_some(),
            disabled: r.disabled_at.is_some(),
            created_at: Timestamp::from_millis(r.created_at),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewOrg {
    pub kind: OrgKind,
    pub name: String,
    pub credit_code: String,
    /// Trading centres only: the centre's code (e.g. `GZ`).
    #[serde(default)]
    pub centre_code: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    /// None for administrators, required for every other role.
    pub org_id: Option<OrgId>,
    pub role: Role,
    pub username: String,
    pub email: String,
    pub display_name: String,
    pub password: String,
}

/// Self-registration of a bidder company and its first user (投标人注册).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BidderRegistration {
    pub company_name: String,
    /// 统一社会信用代码: 18 characters with its check character.
    pub credit_code: String,
    pub username: String,
    pub email: String,
    pub display_name: String,
    /// At least 12 characters.
    pub password: String,
}

/// A registered bidder company and its first user (e-mail not verified yet).
#[derive(Debug, Serialize, ToSchema)]
pub struct Registered {
    pub organisation: OrgView,
    pub user: UserView,
}

/// An opened session.
#[derive(Debug, Serialize, ToSchema)]
pub struct LoginResult {
    /// The bearer token; only its hash is stored.
    pub token: String,
    pub expires_at: Timestamp,
    pub user: UserView,
}
