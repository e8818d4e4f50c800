//! The public read side of sections: the search, a published section's
//! notice, and the published parameters byte for byte as hashed.

use super::load;
use super::views::{
    public_project, public_view, PublicSectionSummary, PublicSectionView, SectionPage,
};
use crate::db::sections::{self as repo, SectionQuery};
use crate::domain::ids::SectionId;
use crate::domain::section::{Category, SectionState};
use crate::domain::time::Timestamp;
use crate::error::{AppError, AppResult};
use crate::service::Services;

pub struct SearchParams {
    pub q: Option<String>,
    pub category: Option<Category>,
    pub state: Option<SectionState>,
    pub page: i64,
    pub per_page: i64,
}

/// Published sections matching the query, newest deadline first.
pub async fn search_public(svc: &Services, q: SearchParams) -> AppResult<SectionPage> {
    if q.state == Some(SectionState::Draft) {
        return Err(AppError::invalid_field("state", "drafts are not public"));
    }
    if q.q.as_ref().is_some_and(|t| t.chars().count() > 100) {
        return Err(AppError::invalid_field("q", "at most 100 characters"));
    }
    let page = q.page.max(1);
    let per_page = q.per_page.clamp(1, 100);
    svc.db
        .run(move |c| {
            let text = q.q.as_deref().map(str::trim).filter(|t| !t.is_empty());
            let (rows, total) = repo::search_public(
                c,
                &SectionQuery {
                    text,
                    category: q.category,
                    state: q.state,
                    limit: per_page,
                    offset: (page - 1) * per_page,
                },
            )?;
            let mut items = Vec::with_capacity(rows.len());
            for (s, p) in rows {
                items.push(PublicSectionSummary {
                    project: public_project(c, &p)?,
                    deadline: s.deadline_at.map(Timestamp::from_millis),
                    deadline_shanghai: s
                        .deadline_at
                        .map(|t| Timestamp::from_millis(t).shanghai_rfc3339()),
                    published_at: s.published_at.map(Timestamp::from_millis),
                    id: s.id,
                    code: s.code,
                    name: s.name,
                    state: s.state,
                });
            }
            Ok(SectionPage {
                total,
                page,
                per_page,
                items,
            })
        })
        .await
}

/// A published section's notice.
pub async fn public_detail(svc: &Services, id: SectionId) -> AppResult<PublicSectionView> {
    svc.db
        .run(move |c| {
            let (s, p) = load(c, &id)?;
            if !s.state.is_public() {
                return Err(AppError::not_found("section"));
            }
            public_view(c, s, p)
        })
        .await
}

/// The published parameters exactly as hashed.
#[derive(Debug, Clone)]
pub struct PublishedParams {
    /// The canonical JSON text (JCS).
    pub json: String,
    /// Its SHA-256, hex: the `params_hash` envelopes name.
    pub hash: String,
}

/// The exact published parameters bytes and their SHA-256 (`params_hash`).
pub async fn public_params(svc: &Services, id: SectionId) -> AppResult<PublishedParams> {
    svc.db
        .run(move |c| {
            let s = repo::find_section(c, &id)?.ok_or_else(|| AppError::not_found("section"))?;
            match (s.params_json, s.params_hash) {
                (Some(json), Some(hash)) => Ok(PublishedParams { json, hash }),
                _ => Err(AppError::not_found("section")),
            }
        })
        .await
}
