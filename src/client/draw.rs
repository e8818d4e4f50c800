//! The draw's seed from a contributor's side (PROTOCOL §14.2): the
//! supervisor or a partner centre commits to a value derived from its key
//! before the draw is asked for, and reveals it after. The value is derived
//! again at reveal ([`seed::derive_value`]), so nothing is kept in between.

use ed25519_dalek::SigningKey;
use serde_json::{json, Value};

use super::{Client, ClientResult};
use crate::evaluation::seed::{self, ContributionStatement};
use crate::evaluation::statements::sign_statement;

impl Client {
    fn draw_path(section: &str, tail: &str) -> String {
        format!("/api/sections/{section}/evaluation/draw{tail}")
    }

    /// Commits `party` (`supervisor` or `centre:{code}`) to its value for
    /// the draw of `section`, signed with `key`.
    pub async fn commit_to_draw(
        &self,
        section: &str,
        party: &str,
        key: &SigningKey,
    ) -> ClientResult<Value> {
        let st = ContributionStatement {
            section_id: section.into(),
            party: party.into(),
            commitment: seed::value_commitment(&seed::derive_value(key, section)),
        };
        let signature = sign_statement(key, seed::CONTRIBUTION_LABEL, &st);
        self.post(
            &Self::draw_path(section, "/commitments"),
            &json!({"statement": st, "signature": signature}),
        )
        .await
    }

    /// Reveals the value `party` committed to with `key`.
    pub async fn reveal_to_draw(
        &self,
        section: &str,
        party: &str,
        key: &SigningKey,
    ) -> ClientResult<Value> {
        let value = hex::encode(seed::derive_value(key, section));
        self.post(
            &Self::draw_path(section, "/reveals"),
            &json!({"party": party, "value": value}),
        )
        .await
    }
}
