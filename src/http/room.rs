//! The room's WebSocket (`GET /api/sections/{id}/room`).
//!
//! - Authentication and authorisation happen before the upgrade: a bearer
//!   token, or a room ticket (`?ticket=`, for browsers), or nothing for the
//!   public view. A bad token or ticket gets the error envelope, not a socket.
//! - On join the watcher gets `hello` (who it is, the server's clock), the
//!   `snapshot` of the room at sequence S, and every event after `?after=`
//!   up to S; then each new event as it commits, and presence.
//! - The socket only pushes. A client may send `{"type":"ping","t":…}`
//!   (answered with the server's clock, to learn its offset) and
//!   `{"type":"resync"}`. Anything else is answered with an error frame;
//!   binary, oversized (> 4 KiB) and flooding clients are disconnected.
//! - A watcher whose queue overflows (it reads too slowly) gets a fresh
//!   snapshot instead of the backlog; one that cannot be written to for
//!   10 s, or is silent for 45 s, is dropped. Nobody waits for anybody.
//!   An overflow that leaves the watcher at most one queue's length behind
//!   the room (a burst of events committed together) is replayed from the
//!   room's history instead, so a reader that keeps up sees every event.
//!
//! The frames are specified in `docs/PROTOCOL.md` ("The opening room").

use std::time::{Duration, Instant};

use actix_web::{web, HttpRequest};
use actix_ws::{CloseCode, CloseReason, Message};
use bytestring::ByteString;
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;

use super::api_doc::{Auth, DescribeArg, OpDoc};
use super::extract::token_of;
use super::respond::Upgrade;
use crate::domain::ids::SectionId;
use crate::error::{AppError, AppResult};
use crate::room::hub::Hub;
use crate::room::state::View;
use crate::service::{auth, room, Services};

/// Largest frame a client may send.
pub const MAX_CLIENT_FRAME: usize = 4096;
/// Messages a client may send per second (sustained) and in a burst.
const RATE: f64 = 5.0;
const BURST: f64 = 20.0;
/// Bad frames tolerated before the socket is closed.
const MAX_BAD: u32 = 5;
const HEARTBEAT: Duration = Duration::from_secs(15);
const SILENCE: Duration = Duration::from_secs(45);

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct RoomQuery {
    /// The last sequence number the client has seen (0: none).
    #[serde(default)]
    after: i64,
    /// A room ticket (`…/room/tickets`), for browsers, which cannot send an
    /// `Authorization` header with a WebSocket.
    ticket: Option<String>,
}

/// The WebSocket's own body: the upgrade (it takes the bearer token or a
/// ticket, or nothing for the public view).
pub struct RoomUpgrade(web::Payload);

impl actix_web::FromRequest for RoomUpgrade {
    type Error = actix_web::Error;
    type Future = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Self, Self::Error>>>>;
    fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let p = web::Payload::from_request(req, payload);
        Box::pin(async move { Ok(RoomUpgrade(p.await?)) })
    }
}

impl DescribeArg for RoomUpgrade {
    fn describe(op: &mut OpDoc) {
        op.auth = Auth::Optional;
    }
}

pub async fn socket(
    req: HttpRequest,
    body: RoomUpgrade,
    svc: web::Data<Services>,
    hub: web::Data<Hub>,
    id: web::Path<SectionId>,
    q: web::Query<RoomQuery>,
) -> AppResult<Upgrade> {
    let body = body.0;
    let section = id.into_inner();
    let user = match (token_of(&req), &q.ticket) {
        (Some(t), _) => Some(auth::authenticate(&svc, &t).await?),
        (None, Some(t)) => Some(room::redeem(&svc, t, &section).await?),
        (None, None) => None,
    };
    let viewer = room::viewer(&svc, user, section.clone()).await?;
    let me = room::me(&svc, &viewer, section.clone()).await?;
    // Fold what has committed so far, so the snapshot a (re)joining watcher
    // gets is current: one indexed read, nothing when there is nothing new.
    let the_room = hub.room(&section).await?;
    the_room.catch_up(&svc).await?;
    let (response, session, stream) = actix_ws::handle(&req, body)
        .map_err(|_| AppError::bad_request("this endpoint speaks WebSocket only"))?;
    let stream = stream.max_frame_size(MAX_CLIENT_FRAME);
    let conn = hub.next_connection();
    let svc = svc.into_inner();
    actix_web::rt::spawn(async move {
        let guard = the_room.enter(&viewer.role, viewer.bidder.clone());
        svc.metrics.inc(
            "kaibiao_room_connections_total",
            &[("view", viewer.view.as_str())],
        );
        let reason = serve(&svc, &the_room, viewer.view, me, q.after, session, stream).await;
        drop(guard);
        tracing::debug!(conn, section = %the_room.section_id, reason, "watcher left");
    });
    Ok(Upgrade(response))
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn take(&mut self) -> bool {
        let now = Instant::now();
        self.tokens = (self.tokens + now.duration_since(self.at).as_secs_f64() * RATE).min(BURST);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

async fn send(
    session: &mut actix_ws::Session,
    limit: Duration,
    text: ByteString,
) -> Result<(), &'static str> {
    match tokio::time::timeout(limit, session.text(text)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err("closed"),
        Err(_) => Err("stalled"),
    }
}

fn error_frame(code: &str, message: &str) -> ByteString {
    json!({"type": "error", "error": code, "message": message})
        .to_string()
        .into()
}

async fn close(session: actix_ws::Session, code: CloseCode, why: &str) {
    let _ = session
        .close(Some(CloseReason {
            code,
            description: Some(why.into()),
        }))
        .await;
}

/// One watcher's life; returns why it ended (for the log).
async fn serve(
    svc: &Services,
    the_room: &std::sync::Arc<crate::room::hub::Room>,
    view: View,
    me: room::RoomMe,
    after: i64,
    mut session: actix_ws::Session,
    mut stream: actix_ws::MessageStream,
) -> &'static str {
    let limit = Duration::from_millis(svc.config.room.send_timeout_ms);
    let joined = the_room.join(view, after);
    let mut rx = joined.rx;
    let mut last = joined.seq;
    let hello = json!({
        "type": "hello", "section_id": the_room.section_id, "view": view.as_str(), "me": me,
        "seq": joined.seq, "phase": joined.phase, "clock": room::clock(svc),
        "heartbeat_ms": HEARTBEAT.as_millis() as u64,
    });
    if send(&mut session, limit, hello.to_string().into())
        .await
        .is_err()
    {
        return "closed before hello";
    }
    for f in joined.frames {
        if let Err(e) = send(&mut session, limit, f).await {
            return e;
        }
    }
    let mut bucket = Bucket {
        tokens: BURST,
        at: Instant::now(),
    };
    let mut bad = 0u32;
    let mut heard = Instant::now();
    let mut beat = tokio::time::interval(HEARTBEAT);
    beat.tick().await;
    loop {
        tokio::select! {
            r = rx.recv() => match r {
                Ok(frame) => {
                    if frame.seq.is_some_and(|s| s <= last) {
                        continue;
                    }
                    if let Some(s) = frame.seq {
                        last = s;
                    }
                    if let Err(e) = send(&mut session, limit, frame.text).await {
                        return e;
                    }
                }
                Err(RecvError::Lagged(missed)) => {
                    rx = rx.resubscribe();
                    // A burst (one catch-up delivering more than the queue
                    // holds) is not a slow watcher: if it missed at most a
                    // queue's length and is at most two queues behind the
                    // room, replay from the room's history so it sees
                    // every event. Further behind, the watcher is slow, not
                    // unlucky: it gets a snapshot, which costs one frame.
                    let queue = svc.config.room.queue_frames;
                    let burst = usize::try_from(missed).is_ok_and(|m| m <= queue);
                    let replay = if burst { the_room.replay(view, last, 2 * queue) } else { None };
                    if let Some((frames, seq)) = replay {
                        svc.metrics.inc("kaibiao_room_replays_total", &[]);
                        last = seq;
                        for f in frames {
                            if let Err(e) = send(&mut session, limit, f).await {
                                return e;
                            }
                        }
                        continue;
                    }
                    svc.metrics.inc("kaibiao_room_resyncs_total", &[]);
                    // Start again from now: the snapshot covers the backlog.
                    let (snap, seq) = the_room.resync(view);
                    last = seq;
                    if let Err(e) = send(&mut session, limit, snap).await {
                        return e;
                    }
                }
                Err(RecvError::Closed) => {
                    close(session, CloseCode::Away, "the room closed").await;
                    return "room closed";
                }
            },
            m = stream.next() => {
                heard = Instant::now();
                let m = match m {
                    None => return "client went away",
                    Some(Err(actix_ws::ProtocolError::Overflow)) => {
                        close(session, CloseCode::Size, "frames are limited to 4 KiB").await;
                        return "oversized frame";
                    }
                    Some(Err(_)) => return "protocol error",
                    Some(Ok(m)) => m,
                };
                let reply = match m {
                    Message::Ping(b) => {
                        if session.pong(&b).await.is_err() {
                            return "closed";
                        }
                        continue;
                    }
                    Message::Pong(_) => continue,
                    Message::Close(_) => {
                        close(session, CloseCode::Normal, "bye").await;
                        return "client closed";
                    }
                    _ if !bucket.take() => {
                        close(session, CloseCode::Policy, "too many messages").await;
                        return "flooding";
                    }
                    Message::Text(t) => client_message(svc, the_room, view, &t, &mut last),
                    Message::Binary(_) | Message::Continuation(_) | Message::Nop => {
                        Err(error_frame("bad_frame", "only JSON text frames are accepted"))
                    }
                };
                let text = match reply {
                    Ok(t) => t,
                    Err(t) => {
                        bad += 1;
                        if bad > MAX_BAD {
                            close(session, CloseCode::Policy, "too many malformed frames").await;
                            return "malformed frames";
                        }
                        t
                    }
                };
                if let Err(e) = send(&mut session, limit, text).await {
                    return e;
                }
            },
            _ = beat.tick() => {
                if heard.elapsed() > SILENCE {
                    close(session, CloseCode::Away, "no answer to heartbeats").await;
                    return "silent";
                }
                if session.ping(b"").await.is_err() {
                    return "closed";
                }
            }
        }
    }
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum ClientMessage {
    Ping { t: Option<f64> },
    Resync,
}

/// The answer to one client frame: `Ok` for a reply, `Err` for an error
/// frame (counted against the client).
fn client_message(
    svc: &Services,
    the_room: &crate::room::hub::Room,
    view: View,
    text: &str,
    last: &mut i64,
) -> Result<ByteString, ByteString> {
    match serde_json::from_str::<ClientMessage>(text) {
        Ok(ClientMessage::Ping { t }) => {
            Ok(json!({"type": "pong", "t": t, "clock": room::clock(svc)}).to_string().into())
        }
        Ok(ClientMessage::Resync) => {
            let (snap, seq) = the_room.resync(view);
            *last = seq;
            Ok(snap)
        }
        Err(e) if e.is_syntax() || e.is_eof() => {
            Err(error_frame("malformed_frame", "frames must be JSON objects"))
        }
        Err(_) => Err(error_frame(
            "unknown_message",
            "the room accepts only {\"type\":\"ping\"} and {\"type\":\"resync\"}; changes go through the REST API",
        )),
    }
}
