//! The public read side: published sections, their parameters and
//! documents, and the platform's public key. No sign-in needed.

use actix_web::{web, HttpResponse};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt;
use utoipa::{IntoParams, ToSchema};

use super::respond::{Download, Json, ParamsBytes, Text};
use crate::domain::ids::SectionId;
use crate::domain::section::{Category, SectionState};
use crate::error::{AppError, AppResult};
use crate::service::sections::{self, DocumentView, PublicSectionView, SearchParams, SectionPage};
use crate::service::Services;

type Svc = web::Data<Services>;

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct SearchQuery {
    /// Text in the section's or project's name or code (at most 100 characters).
    q: Option<String>,
    category: Option<Category>,
    /// Any state but `draft`.
    state: Option<SectionState>,
    /// From 1.
    page: Option<i64>,
    /// 1 to 100 (default 20).
    per_page: Option<i64>,
}

pub async fn list(svc: Svc, q: web::Query<SearchQuery>) -> AppResult<Json<SectionPage>> {
    let q = q.into_inner();
    let page = sections::search_public(
        &svc,
        SearchParams {
            q: q.q,
            category: q.category,
            state: q.state,
            page: q.page.unwrap_or(1),
            per_page: q.per_page.unwrap_or(20),
        },
    )
    .await?;
    Ok(Json(page))
}

pub async fn detail(svc: Svc, id: web::Path<SectionId>) -> AppResult<Json<PublicSectionView>> {
    Ok(Json(sections::public_detail(&svc, id.into_inner()).await?))
}

/// The canonical parameters bytes, exactly as hashed. `ETag` carries the hash.
pub async fn params(svc: Svc, id: web::Path<SectionId>) -> AppResult<ParamsBytes> {
    let p = sections::public_params(&svc, id.into_inner()).await?;
    Ok(ParamsBytes(Text {
        content_type: "application/json",
        headers: vec![
            ("ETag", format!("\"{}\"", p.hash)),
            ("X-Params-Hash", p.hash),
        ],
        body: p.json,
    }))
}

/// The platform's signing key.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlatformKey {
    /// Always `ed25519`.
    pub algorithm: String,
    /// Hex.
    pub public_key: String,
}

pub async fn platform_key(svc: Svc) -> AppResult<Json<PlatformKey>> {
    Ok(Json(PlatformKey {
        algorithm: "ed25519".into(),
        public_key: svc.platform_public_hex(),
    }))
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
pub fn url_encode(s: &str) -> String {
    let mut enc = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            enc.push(b as char);
        } else {
            enc.push_str(&format!("%{b:02X}"));
        }
    }
    enc
}

/// RFC 5987/6266 `Content-Disposition` with a UTF-8 file name.
fn disposition(name: &str) -> String {
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-._ ".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!(
        "attachment; filename=\"{ascii}\"; filename*=UTF-8''{}",
        url_encode(name)
    )
}

/// Streams a stored document in 64 KiB reads.
pub async fn stream_document(svc: &Services, d: DocumentView) -> AppResult<Download> {
    let file = svc
        .blobs
        .open_read(&d.sha256)
        .await
        .map_err(AppError::internal)?;
    let stream = futures_util::stream::unfold(file, |mut f| async move {
        let mut buf = vec![0u8; 64 * 1024];
        match f.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<Bytes, std::io::Error>(Bytes::from(buf)), f))
            }
            Err(e) => Some((Err(e), f)),
        }
    });
    Ok(Download(
        HttpResponse::Ok()
            .content_type(d.content_type.as_str())
            .insert_header(("Content-Disposition", disposition(&d.name)))
            .insert_header(("X-Content-SHA256", d.sha256.clone()))
            .no_chunking(d.size as u64)
            .streaming(stream),
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn disposition_encodes_utf8_names() {
        assert_eq!(
            super::disposition("招标文件 v1.pdf"),
            "attachment; filename=\"____ v1.pdf\"; filename*=UTF-8''%E6%8B%9B%E6%A0%87%E6%96%87%E4%BB%B6%20v1.pdf"
        );
    }
}
