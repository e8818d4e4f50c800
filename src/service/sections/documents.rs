//! Tender documents (招标文件): who may upload them and when (before the
//! deadline, by the section's host, authorised before a byte is read), their
//! deletion while unpublished, and who may download them.

use serde_json::json;

use super::load;
use super::params::published_documents;
use super::views::DocumentView;
use crate::db::audit;
use crate::db::sections::{self as repo, DocumentRow};
use crate::domain::identity::Role;
use crate::domain::ids::{DocumentId, SectionId};
use crate::domain::section::SectionState;
use crate::error::{AppError, AppResult, ErrorCode};
use crate::service::action::transact;
use crate::service::policy::{require_runs, standing, Standing};
use crate::service::{Actor, AuthUser, Services};

/// A document's name and type, as uploaded.
#[derive(Debug, Clone)]
pub struct NewDocument {
    pub name: String,
    pub content_type: String,
}

fn check_document_name(name: &str) -> AppResult<String> {
    let n = name.trim();
    let ok = !n.is_empty()
        && n.chars().count() <= 200
        && !n.contains(['/', '\\'])
        && !n.chars().any(char::is_control)
        && n != "."
        && n != "..";
    if ok {
        Ok(n.to_string())
    } else {
        Err(AppError::invalid_field(
            "name",
            "a file name of 1-200 characters without path separators",
        ))
    }
}

fn documents_may_change(state: SectionState) -> AppResult<()> {
    if matches!(state, SectionState::Draft | SectionState::Published) {
        Ok(())
    } else {
        Err(AppError::new(
            ErrorCode::InvalidTransition,
            format!("documents cannot change once the section is {state}"),
        ))
    }
}

/// Authorises a document upload before any byte is read.
pub async fn authorize_upload(svc: &Services, actor: &Actor, id: SectionId) -> AppResult<()> {
    actor.require(&[Role::Host])?;
    let user = actor.user.clone();
    svc.db
        .run(move |c| {
            let (s, p) = load(c, &id)?;
            let st = standing(c, &user, &p, Some(&id))?;
            require_runs(&st, s.state.is_public(), "upload documents")?;
            documents_may_change(s.state)
        })
        .await
}

/// Records a document whose bytes are already in the blob store.
pub async fn add_document(
    svc: &Services,
    actor: &Actor,
    id: SectionId,
    doc: NewDocument,
    sha256: String,
    size: u64,
) -> AppResult<DocumentView> {
    let name = check_document_name(&doc.name)?;
    let user = actor.user.clone();
    transact(svc, actor.who(), move |tx| {
        let (s, p) = load(tx.c, &id)?;
        let st = standing(tx.c, &user, &p, Some(&id))?;
        require_runs(&st, s.state.is_public(), "upload documents")?;
        documents_may_change(s.state)?;
        let row = DocumentRow {
            id: DocumentId::new(),
            section_id: id.clone(),
            amendment_id: None,
            name,
            content_type: doc.content_type,
            size: size as i64,
            sha256,
            uploaded_by: user.id.clone(),
            created_at: tx.now,
        };
        repo::insert_document(tx.c, &row)?;
        audit::record(
            tx.c,
            tx.now,
            &tx.who,
            "section.document_add",
            id.as_str(),
            &json!({"document": row.id, "sha256": row.sha256}),
        )?;
        Ok(DocumentView::from(row))
    })
    .await
}

/// Deletes a document that is not on the record yet.
pub async fn delete_document(
    svc: &Services,
    actor: &Actor,
    id: SectionId,
    doc_id: DocumentId,
) -> AppResult<()> {
    actor.require(&[Role::Host])?;
    let user = actor.user.clone();
    transact(svc, actor.who(), move |tx| {
        let (s, p) = load(tx.c, &id)?;
        let st = standing(tx.c, &user, &p, Some(&id))?;
        require_runs(&st, s.state.is_public(), "delete documents")?;
        let doc = repo::find_document(tx.c, &id, &doc_id)?
            .ok_or_else(|| AppError::not_found("document"))?;
        let published = published_documents(&s, vec![doc.clone()])?;
        let deletable = match s.state {
            SectionState::Draft => true,
            SectionState::Published => published.is_empty() && doc.amendment_id.is_none(),
            _ => false,
        };
        if !deletable || repo::delete_document(tx.c, &id, &doc_id)? != 1 {
            return Err(AppError::new(
                ErrorCode::InvalidTransition,
                "a published document stays on the record; publish an amendment instead",
            ));
        }
        audit::record(
            tx.c,
            tx.now,
            &tx.who,
            "section.document_delete",
            id.as_str(),
            &json!({"document": doc_id}),
        )?;
        Ok(())
    })
    .await
}

/// A document for download, if the caller may have it: the section's staff
/// any document, everyone else the published ones of a public section.
pub async fn document_for(
    svc: &Services,
    user: Option<AuthUser>,
    id: SectionId,
    doc_id: DocumentId,
) -> AppResult<DocumentView> {
    svc.db
        .run(move |c| {
            let (s, p) = load(c, &id)?;
            let st = match &user {
                Some(u) => standing(c, u, &p, Some(&id))?,
                None => Standing::default(),
            };
            let doc = repo::find_document(c, &id, &doc_id)?
                .ok_or_else(|| AppError::not_found("document"))?;
            if st.can_view() {
                return Ok(doc.into());
            }
            if !s.state.is_public() {
                return Err(AppError::not_found("section"));
            }
            published_documents(&s, vec![doc])?
                .pop()
                .map(Into::into)
                .ok_or_else(|| AppError::not_found("document"))
        })
        .await
}
