//! Who is watching a room and what they may see: the viewer's view (public or
//! staff) and personal `me` block, the REST twin of the socket's snapshot,
//! and the short-lived tickets a browser uses to open the socket (browsers
//! cannot set an `Authorization` header on a WebSocket).

use base64::Engine;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{confidential, policy, AuthUser, Services};
use crate::crypto::ct_eq;
use crate::db::{bids as bids_repo, opening as opening_repo, sections as sections_repo};
use crate::domain::identity::Role;
use crate::domain::ids::{OrgId, SectionId, UserId};
use crate::domain::section::SectionState;
use crate::domain::states::BidStatus;
use crate::error::{AppError, AppResult, ErrorCode};
use crate::room::state::{RoomState, View};

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
    section_id: SectionId,
) -> AppResult<Viewer> {
    svc.db
        .run(move |c| {
            let (s, p) = sections_repo::section_with_project(c, &section_id)?
                .ok_or_else(|| AppError::not_found("section"))?;
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
            if s.state == SectionState::Draft && view != View::Staff {
                return Err(AppError::not_found("section"));
            }
            let sealed = !matches!(s.state, SectionState::Draft | SectionState::Published);
            let bidder = match &user {
                Some(u) if u.role == Role::Bidder && sealed => match &u.org_id {
                    Some(org) => {
                        let name = crate::db::identity::find_org(c, org)?
                            .map(|o| o.name)
                            .unwrap_or_default();
                        Some((org.to_string(), name))
                    }
                    None => None,
                },
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

/// One of the viewer's own bids in the opening.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MyBid {
    pub envelope_hash: String,
    pub bid_id: String,
}

/// The viewer's own facts: a bidder's sign-in and bids, a custodian's
/// position and release. Never anything about anyone else.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RoomMe {
    /// `public`, or the user's role.
    pub role: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<UserId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub view: Option<View>,
    /// Bidders: their organisation, whether it signed in, its bids.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organisation: Option<OrgId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_in: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bids: Option<Vec<MyBid>>,
    /// Custodians: their position in the section, and whether they released.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub released: Option<bool>,
}

pub async fn me(svc: &Services, v: &Viewer, section_id: SectionId) -> AppResult<RoomMe> {
    let mut me = RoomMe {
        role: v.role.clone(),
        user: None,
        view: None,
        organisation: None,
        signed_in: None,
        bids: None,
        position: None,
        released: None,
    };
    let Some(u) = v.user.clone() else {
        return Ok(me);
    };
    me.user = Some(u.id.clone());
    me.view = Some(v.view);
    let s = svc.clone();
    svc.db
        .run(move |c| {
            match (u.role, &u.org_id) {
                (Role::Bidder, Some(org)) => {
                    me.signed_in = Some(opening_repo::signin_exists(
                        c,
                        &confidential::signin(&s.atrest, &section_id, org),
                    )?);
                    me.bids = Some(
                        bids_repo::bids_of(c, &section_id)?
                            .into_iter()
                            .filter(|b| b.bidder == *org && b.status == BidStatus::Accepted)
                            .map(|b| MyBid {
                                envelope_hash: b.envelope_hash,
                                bid_id: b.bid_id,
                            })
                            .collect(),
                    );
                    me.organisation = Some(org.clone());
                }
                (Role::Custodian, _) => {
                    me.position = sections_repo::custodians(c, &section_id)?
                        .into_iter()
                        .find(|(_, id)| *id == u.id)
                        .map(|(p, _)| p);
                    me.released = Some(
                        opening_repo::releases_of(c, &section_id)?
                            .iter()
                            .any(|r| r.custodian == u.id),
                    );
                }
                _ => {}
            }
            Ok(me)
        })
        .await
}

/// The server's clock: its reading and its rate against real time.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ServerClock {
    pub now_ms: i64,
    /// Platform milliseconds per real millisecond (1 in production).
    pub rate: f64,
}

pub fn clock(svc: &Services) -> ServerClock {
    ServerClock {
        now_ms: svc.now().millis(),
        rate: svc.clock.rate(),
    }
}

/// The room as the caller may see it, with the caller's own facts and the
/// server's clock for countdowns.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OpeningSnapshot {
    /// Always `snapshot` (the same shape as the socket's snapshot frame).
    #[serde(rename = "type")]
    pub kind: String,
    pub seq: i64,
    pub view: View,
    pub state: RoomState,
    pub me: RoomMe,
    pub clock: ServerClock,
}

/// The opening as the caller may see it (the REST twin of the socket's
/// snapshot), with the server's clock for countdowns.
pub async fn snapshot(
    svc: &Services,
    hub: &crate::room::hub::Hub,
    user: Option<AuthUser>,
    section_id: SectionId,
) -> AppResult<OpeningSnapshot> {
    let v = viewer(svc, user, section_id.clone()).await?;
    let room = hub.room(&section_id).await?;
    // Read-your-writes: whatever the caller just did is in the answer.
    room.catch_up(svc).await?;
    let (text, seq) = room.resync(v.view);
    #[derive(Deserialize)]
    struct Frame {
        state: RoomState,
    }
    let frame: Frame = serde_json::from_str(&text).map_err(AppError::internal)?;
    Ok(OpeningSnapshot {
        kind: "snapshot".into(),
        seq,
        view: v.view,
        state: frame.state,
        me: me(svc, &v, section_id).await?,
        clock: clock(svc),
    })
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

/// A ticket to join one room's socket as oneself.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RoomTicket {
    /// Pass it as `?ticket=` when opening the socket.
    pub ticket: String,
    pub expires_at_ms: i64,
}

/// A ticket for `section_id`'s room, valid for a minute, for the session
/// `token` belongs to.
pub async fn ticket(
    svc: &Services,
    user: &AuthUser,
    token: &str,
    section_id: SectionId,
) -> AppResult<RoomTicket> {
    viewer(svc, Some(user.clone()), section_id.clone()).await?;
    let exp = svc.now().millis() + TICKET_TTL_MS;
    let body = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(
        serde_json::to_vec(&Ticket {
            t: crate::crypto::token_hash(token),
            s: section_id.to_string(),
            e: exp,
        })
        .expect("ticket"),
    );
    let t = format!("{body}.{}", mac(svc, &body));
    Ok(RoomTicket {
        ticket: t,
        expires_at_ms: exp,
    })
}

/// The user a ticket stands for, if it is genuine, unexpired, for this
/// section, and its session is still valid.
pub async fn redeem(svc: &Services, ticket: &str, section_id: &SectionId) -> AppResult<AuthUser> {
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
    if t.s != section_id.as_str() || t.e <= svc.now().millis() {
        return Err(bad());
    }
    super::auth::authenticate_hash(svc, t.t).await
}
