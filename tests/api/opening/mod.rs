//! The opening (开标) end to end over real HTTP and WebSocket connections,
//! one file per concern: the announcement in custodians' mode, the bidders'
//! own decryption, the window and its extension, platform faults and
//! escrow, too few bids, bad key releases, confirmations and objections,
//! the signed record, and the transcript that proves it all offline.
//! Fixtures start each test at its phase ([`crate::fixture::Phase`]).

mod announcement;
mod bidders_mode;
mod confirmations;
mod failure;
mod incidents;
mod key_releases;
mod record;
mod transcript;
mod window;

use kaibiao::crypto::opening::{KeyRelease, SignedKeyRelease, KEY_RELEASE_FORMAT};
use kaibiao::crypto::x25519;

use crate::fixture::Fx;

/// The prices of the three bids where a test reads them back.
pub const PRICES: [Option<&str>; 3] = [Some("9876543.21"), Some("10000000.00"), Some("8800000.50")];

/// A release signed for custodian `i` but with `secret` (maybe not its own).
pub fn release_with(fx: &Fx, i: usize, secret: &x25519::SecretKey, now: i64) -> SignedKeyRelease {
    let c = &fx.w.custodians[i];
    SignedKeyRelease::sign(
        KeyRelease {
            format: KEY_RELEASE_FORMAT.into(),
            section_id: fx.section.clone(),
            custodian: c.person.id.clone(),
            position: i as u32 + 1,
            public_key: hex::encode(fx.custodian_keys[i].public_key()),
            secret_key: hex::encode(*secret.to_bytes()),
            identity_key: hex::encode(c.identity.verifying_key().to_bytes()),
            released_at_ms: now,
        },
        &c.identity,
    )
}
