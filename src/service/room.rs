//! Who is watching a room and what they may see: the viewer's view (public or
//! staff) and personal `me` block, and the short-lived tickets a browser uses
//! to open the socket (browsers cannot set an `Authorization` header on a
//! WebSocket).

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{confidential, policy, AuthUser, Services};
use crate::crypto::ct_eq;
use crate::db::{bids as bids_repo, opening as opening_repo, sections as sections_repo};
use crate::domain::identity::Role;
use crate::domain::section::SectionState;
use crate::error::{AppError, AppResult, ErrorCode};
use crate::room::state::View;

/// How long a room ticket is valid.
pub const TICKET_TTL_MS: i64 = 60_000;

/// A watcher of one room.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub view: View,
    /// `public` for the anonymous, otherwise the user's role.
    pub role: String,
    pub user: Option<AuthUser>,
    /// For a bidder after the sealing: `(organisation, name)` for presence.
    pub bidder: Option<(String, String)>,
}

/// Decides the view of `user` on a section's room, refusing drafts to
/// everyone but the section's own staff.
pub async fn viewer(
    svc: &Services,
    user: Option<AuthUser>,
    section_id: String,
) -> AppResult<Viewer> {
    svc.db
        .run(move |c| {
            let (s, p) = sections_repo::section_with_project(c, &section_id)?
                .ok_or_else(|| AppError::not_found("section"))?;
            let state = SectionState::from_db(&s.state).map_err(AppError::internal)?;
            let (view, role) = match &user {
                None => (View::Public, "public".to_string()),
                Some(u) => {
                    let st = policy::standing(c, u, &p, Some(&section_id))?;
                    let staff = st.runs || st.owns || st.supervises || u.role == Role::Admin;
                    (
                        if staff { View::Staff } else { View::Public },
                        u.role.as_str().to_string(),
                    )
                }
            };
            if state == SectionState::Draft && view != View::Staff {
                return Err(AppError::not_found("section"));
            }
            let sealed = !matches!(state, SectionState::Draft | SectionState::Published);
            let bidder = match &user {
                Some(u) if u.role == Role::Bidder && sealed => {
                    let org = u.org_id.as_ref().map(|o| o.to_string()).unwrap_or_default();
                    let name = crate::db::identity::find_org(c, &org)?
                        .map(|o| o.name)
                        .unwrap_or_default();
                    Some((org, name))
                }
                _ => None,
            };
            Ok(Viewer {
                view,
                role,
                user,
                bidder,
            })
        })
        .await
}

/// The viewer's own facts: a bidder's sign-in and bids, a custodian's
/// release. Never anything about anyone else.
pub async fn me(svc: &Services, v: &Viewer, section_id: String) -> AppResult<Value> {
    let Some(u) = v.user.clone() else {
        return Ok(json!({"role": "public"}));
    };
    let s = svc.clone();
    let view = v.view;
    svc.db
        .run(move |c| {
            let mut me =
                json!({"role": u.role.as_str(), "user": u.id.as_str(), "view": view.as_str()});
            match u.role {
                Role::Bidder => {
                    let org = u.org_id.as_ref().map(|o| o.to_string()).unwrap_or_default();
                    me["organisation"] = json!(org);
                    me["signed_in"] = json!(opening_repo::signin_exists(
                        c,
                        &confidential::signin(&s.atrest, &section_id, &org)
                    )?);
                    let mine: Vec<Value> = bids_repo::bids_of(c, &section_id)?
                        .into_iter()
                        .filter(|b| b.bidder == org && b.status == "accepted")
                        .map(|b| json!({"envelope_hash": b.envelope_hash, "bid_id": b.bid_id}))
                        .collect();
                    me["bids"] = json!(mine);
                }
                Role::Custodian => {
                    let pos = sections_repo::custodians(c, &section_id)?
                        .into_iter()
                        .find(|(_, id)| id == u.id.as_str())
                        .map(|(p, _)| p);
                    me["position"] = json!(pos);
                    me["released"] = json!(opening_repo::releases_of(c, &section_id)?
                        .iter()
                        .any(|r| r.custodian == u.id.as_str()));
                }
                _ => {}
            }
            Ok(me)
        })
        .await
}

/// The opening as the caller may see it (the REST twin of the socket's
/// snapshot), with the server's clock for countdowns.
pub async fn snapshot(
    svc: &Services,
    hub: &crate::room::hub::Hub,
    user: Option<AuthUser>,
    section_id: String,
) -> AppResult<Value> {
    let v = viewer(svc, user, section_id.clone()).await?;
    let room = hub.room(&section_id).await?;
    // Read-your-writes: whatever the caller just did is in the answer.
    room.catch_up(svc).await?;
    let (text, seq) = room.resync(v.view);
    let mut snap: Value = serde_json::from_str(&text).map_err(AppError::internal)?;
    snap["me"] = me(svc, &v, section_id).await?;
    snap["clock"] = clock(svc);
    snap["seq"] = json!(seq);
    Ok(snap)
}

/// The server's clock: its reading and its rate against real time.
pub fn clock(svc: &Services) -> Value {
    json!({"now_ms": svc.now().millis(), "rate": svc.clock.rate()})
}

// ------------------------------------------------------------------ tickets

#[derive(Debug, Serialize, Deserialize)]
struct Ticket {
    /// SHA-256 of the session token (as stored), never the token.
    t: String,
    s: String,
    e: i64,
}

fn mac(svc: &Services, body: &str) -> String {
    svc.atrest.tag("room-ticket", &[body])
}

/// A ticket for `section_id`'s room, valid for a minute, for the session
/// `token` belongs to.
pub async fn ticket(
    svc: &Services,
    user: &AuthUser,
    token: &str,
    section_id: String,
) -> AppResult<Value> {
    viewer(svc, Some(user.clone()), section_id.clone()).await?;
    let exp = svc.now().millis() + TICKET_TTL_MS;
    let body = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(
        serde_json::to_vec(&Ticket {
            t: crate::crypto::token_hash(token),
            s: section_id,
            e: exp,
        })
        .expect("ticket"),
    );
    let t = format!("{body}.{}", mac(svc, &body));
    Ok(json!({"ticket": t, "expires_at_ms": exp}))
}

/// The user a ticket stands for, if it is genuine, unexpired, for this
/// section, and its session is still valid.
pub async fn redeem(svc: &Services, ticket: &str, section_id: &str) -> AppResult<AuthUser> {
    let bad = || {
        AppError::new(
            ErrorCode::Unauthenticated,
            "the room ticket is invalid or has expired",
        )
    };
    let (body, tag) = ticket.split_once('.').ok_or_else(bad)?;
    if !ct_eq(mac(svc, body).as_bytes(), tag.as_bytes()) {
        return Err(bad());
    }
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(body)
        .map_err(|_| bad())?;
    let t: Ticket = serde_json::from_slice(&raw).map_err(|_| bad())?;
    if t.s != section_id || t.e <= svc.now().millis() {
        return Err(bad());
    }
    super::auth::authenticate_hash(svc, t.t).await
}
