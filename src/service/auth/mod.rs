//! Organisations, users, sign-in and e-mail verification.
//!
//! - Passwords: argon2id (the crate's defaults: m = 19 MiB, t = 2, p = 1),
//!   hashed off the async executor (`passwords.rs`).
//! - Sessions: opaque 256-bit tokens; only their SHA-256 is stored; absolute
//!   expiry; revocable one by one or all at once (`signin.rs`).
//! - Sign-in throttling is kept in the database (so it holds across nodes)
//!   per account *and* address, so nobody can lock another out: see
//!   `signin.rs`.
//!
//! | file           | owns                                                   |
//! |----------------|--------------------------------------------------------|
//! | `views.rs`     | the organisation and user views, requests and answers  |
//! | `passwords.rs` | hashing and checking passwords                         |
//! | `orgs.rs`      | organisations (administrators, the command line)      |
//! | `users.rs`     | users, bidder self-registration, disabling, sessions' revocation |
//! | `signin.rs`    | sign-in with its throttle, sign-out, authentication    |
//! | `email.rs`     | e-mail verification                                    |

mod email;
mod orgs;
mod passwords;
mod signin;
mod users;
mod views;

pub use email::{resend_verification, verify_email, VerificationResent, Verified};
pub use orgs::{bootstrap_org, create_org, list_orgs};
pub use passwords::{hash_password, verify_password};
pub use signin::{authenticate, authenticate_hash, login, logout, me, Me};
pub use users::{
    bootstrap_user, create_user, list_users, register_bidder, revoke_user_sessions,
    set_user_disabled, BootstrapUser, SessionsRevoked,
};
pub use views::{BidderRegistration, LoginResult, NewOrg, NewUser, OrgView, Registered, UserView};
