//! The blind tags under which pre-deadline records are filed (see
//! `crypto::atrest`). One place, so every use agrees on the spelling.

use crate::crypto::atrest::AtRest;
use crate::domain::ids::{OrgId, SectionId};

/// All submissions to a section.
pub fn section(at: &AtRest, section_id: &SectionId) -> String {
    at.tag("section", &[section_id.as_str()])
}

/// One bidder's chain of revisions in one section.
pub fn bidder(at: &AtRest, section_id: &SectionId, org_id: &OrgId) -> String {
    at.tag("bidder", &[section_id.as_str(), org_id.as_str()])
}

/// Everything one bidder organisation has submitted anywhere.
pub fn owner(at: &AtRest, org_id: &OrgId) -> String {
    at.tag("owner", &[org_id.as_str()])
}

/// A bidder's registration for a section.
pub fn registration(at: &AtRest, section_id: &SectionId, org_id: &OrgId) -> String {
    at.tag("registration", &[section_id.as_str(), org_id.as_str()])
}

/// A bidder's sign-in (签到) to a section's opening before the deadline.
pub fn signin(at: &AtRest, section_id: &SectionId, org_id: &OrgId) -> String {
    at.tag("signin", &[section_id.as_str(), org_id.as_str()])
}
