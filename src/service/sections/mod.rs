//! Sections (标段/包): drafting, publication with validated settings,
//! amendments (澄清/修改), cancellation, tender documents, bidder
//! registration, and the public read side.
//!
//! At publication the section's settings are frozen into its *published
//! parameters* ([`params`]): one JSON document, canonicalised with JCS, whose
//! SHA-256 is the `params_hash` every sealed bid names. An amendment
//! publishes a new version of the parameters (and so a new hash).
//!
//! | file              | owns                                                        |
//! |-------------------|-------------------------------------------------------------|
//! | `views.rs`        | what each audience sees of a section, and how it is built   |
//! | `params.rs`       | the published parameters document (`kaibiao-section-params/1`) |
//! | `draft.rs`        | creating and editing drafts; the settings' field checks     |
//! | `lifecycle.rs`    | publication (with every problem listed) and cancellation   |
//! | `amend.rs`        | amendments, the deadline they move, the bidders they notify |
//! | `registration.rs` | bidders registering (blind), and mail to the registered    |
//! | `documents.rs`    | tender documents: upload, deletion, download rights         |
//! | `public.rs`       | search, the public notice, the parameters' exact bytes      |
//! | `record.rs`       | the section's event record and audit trail                  |

mod amend;
mod documents;
mod draft;
mod lifecycle;
mod params;
mod public;
mod record;
mod registration;
mod views;

pub use amend::{amend, AmendmentRequest};
pub use documents::{add_document, authorize_upload, delete_document, document_for, NewDocument};
pub use draft::{create, get, update_draft, SectionDraft};
pub use lifecycle::{cancel, min_days, publish, CancelRequest};
pub use params::{ParamsCustodian, ParamsDocument, SectionParams, PARAMS_FORMAT};
pub use public::{public_detail, public_params, search_public, PublishedParams, SearchParams};
pub use record::{audit_for, events_for, AuditView, EventView};
pub use registration::{notify_registered, register_bidder, RegistrationConfirmed};
pub use views::{
    AmendmentView, CustodianView, DocumentView, PublicProject, PublicSectionSummary,
    PublicSectionView, SectionNotice, SectionPage, SectionSummary, SectionView,
};

use crate::db::sections::{self as repo, ProjectRow, SectionRow};
use crate::db::DbConn;
use crate::domain::evaluation::EvaluationSpec;
use crate::domain::ids::SectionId;
use crate::domain::section::SummaryField;
use crate::error::{AppError, AppResult, ErrorCode};

/// A section and its project; not found otherwise.
fn load(c: &mut DbConn, id: &SectionId) -> AppResult<(SectionRow, ProjectRow)> {
    repo::section_with_project(c, id)?.ok_or_else(|| AppError::not_found("section"))
}

fn not_draft() -> AppError {
    AppError::new(
        ErrorCode::SectionNotDraft,
        "the section is published; change it through an amendment (澄清/修改)",
    )
}

fn summary_fields_of(s: &SectionRow) -> AppResult<Vec<SummaryField>> {
    serde_json::from_str(&s.summary_fields).map_err(AppError::internal)
}

fn evaluation_of(s: &SectionRow) -> AppResult<Option<EvaluationSpec>> {
    s.evaluation
        .as_deref()
        .map(serde_json::from_str)
        .transpose()
        .map_err(AppError::internal)
}
