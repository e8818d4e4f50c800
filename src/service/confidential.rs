//! The blind tags under which pre-deadline records are filed (see
//! `crypto::atrest`). One place, so every use agrees on the spelling.

use crate::crypto::atrest::AtRest;

/// All submissions to a section.
pub fn section(at: &AtRest, section_id: &str) -> String {
    at.tag("section", &[section_id])
}

/// One bidder's chain of revisions in one section.
pub fn bidder(at: &AtRest, section_id: &str, org_id: &str) -> String {
    at.tag("bidder", &[section_id, org_id])
}

/// Everything one bidder organisation has submitted anywhere.
pub fn owner(at: &AtRest, org_id: &str) -> String {
    at.tag("owner", &[org_id])
}

/// A bidder's registration for a section.
pub fn registration(at: &AtRest, section_id: &str, org_id: &str) -> String {
    at.tag("registration", &[section_id, org_id])
}

/// A bidder's sign-in (签到) to a section's opening before the deadline.
pub fn signin(at: &AtRest, section_id: &str, org_id: &str) -> String {
    at.tag("signin", &[section_id, org_id])
}
