//! The room's socket itself, over real WebSocket connections: authentication
//! before the upgrade, role-filtered views, sign-in, resuming without gaps,
//! a lagging client that gets a snapshot and slows nobody, and clients that
//! flood or send malformed or oversized frames.

use std::time::Duration;

use kaibiao::client::opening::Watcher;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::fixture::{Fixture, Fx, Phase};
use crate::helpers::rows_of;

const WAIT: Duration = Duration::from_secs(20);

async fn two_bid_section(tweak: impl FnOnce(&mut kaibiao::config::Config) + 'static) -> Fx {
    Fixture::new()
        .prices(&[Some("5000000.00"), Some("5100000.00"), None])
        .config(tweak)
        .at(Phase::Bidding)
        .await
}

async fn notices(fx: &Fx, n: usize, text: &str) -> Vec<i64> {
    let mut seqs = Vec::new();
    // One client: building one sets up TLS, which costs more than a notice.
    let host = fx.host();
    for i in 0..n {
        let v = host
            .notice(&fx.section, &format!("{text} {i}"))
            .await
            .unwrap();
        seqs.push(v["seq"].as_i64().unwrap());
    }
    seqs
}

/// The next `n` event frames (skipping presence and the like).
async fn next_events(w: &mut Watcher, n: usize) -> Vec<Value> {
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + 3 * WAIT;
    while out.len() < n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {} events of {n} in time",
            out.len()
        );
        let f = w
            .next_within(WAIT)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("closed after {} events", out.len()));
        match f["type"].as_str() {
            Some("event") => out.push(f),
            // The snapshot that opens a connection comes before any event;
            // one after them means this watcher was resynchronised.
            Some("snapshot") if !out.is_empty() => {
                panic!("resynchronised after {} events", out.len())
            }
            _ => {}
        }
    }
    out
}

#[actix_web::test]
async fn the_socket_authenticates_before_the_upgrade_and_tickets_are_bound_to_one_section() {
    let fx = two_bid_section(|_| {}).await;
    let base = fx.app.base.clone();
    // A bad token: the error envelope, no socket.
    let e = Watcher::connect(&base, &fx.section, Some("not-a-token"), 0)
        .await
        .err()
        .expect("refused");
    assert!(e.to_string().contains("401"), "{e}");
    let r = fx
        .app
        .get(&format!("/api/sections/{}/room", fx.section), Some("bad"))
        .await;
    r.expect_error(401, "unauthenticated");
    // A draft's room is not there for the public.
    let draft = fx.w.draft(&fx.app, 20).await;
    let e = Watcher::connect(&base, &draft, None, 0)
        .await
        .err()
        .unwrap();
    assert!(e.to_string().contains("404"), "{e}");
    // But it is for its host.
    Watcher::connect(&base, &draft, Some(&fx.w.host.token), 0)
        .await
        .unwrap();
    // A plain GET without the upgrade is refused in the envelope.
    fx.app
        .get(&format!("/api/sections/{}/room", fx.section), None)
        .await
        .expect_error(400, "bad_request");

    // Tickets: for one section, for a minute, for a live session.
    let ticket = fx.host().room_ticket(&fx.section).await.unwrap();
    fx.app
        .get(
            &format!("/api/sections/{}/room?ticket={ticket}", fx.section),
            None,
        )
        .await
        .expect_error(400, "bad_request");
    let url = |s: &str, t: &str| {
        format!(
            "{}/api/sections/{s}/room?ticket={t}",
            base.replacen("http", "ws", 1)
        )
    };
    let (_, mut framed) = awc::Client::new()
        .ws(url(&fx.section, &ticket))
        .connect()
        .await
        .map_err(|e| format!("{e:?}"))
        .unwrap();
    use futures_util::StreamExt;
    let hello = framed.next().await.unwrap().unwrap();
    let awc::ws::Frame::Text(t) = hello else {
        panic!("no hello")
    };
    let hello: Value = serde_json::from_slice(&t).unwrap();
    assert_eq!(hello["view"], "staff");
    let refused = awc::Client::new()
        .ws(url(&draft, &ticket))
        .connect()
        .await
        .err()
        .unwrap();
    assert!(format!("{refused:?}").contains("401"), "{refused:?}");
    // The last character changed (always to something else: a fixed "00"
    // was once the ticket's own ending).
    let mut forged = ticket.clone();
    let last = if forged.ends_with('0') { "1" } else { "0" };
    forged.replace_range(forged.len() - 1.., last);
    assert_ne!(forged, ticket);
    assert!(awc::Client::new()
        .ws(url(&fx.section, &forged))
        .connect()
        .await
        .is_err());
    fx.app.advance(chrono::Duration::minutes(2));
    let expired = awc::Client::new()
        .ws(url(&fx.section, &ticket))
        .connect()
        .await
        .err()
        .unwrap();
    assert!(format!("{expired:?}").contains("401"), "{expired:?}");
    fx.app.stop().await;
}

#[actix_web::test]
async fn each_role_sees_its_own_view_and_sign_ins_stay_secret_until_the_deadline() {
    let fx = two_bid_section(|_| {}).await;
    let s = fx.section.clone();
    // Sign-in before it is open is refused; the host opens it.
    let e = fx.bidder(0).sign_in(&s).await.unwrap_err();
    assert_eq!(e.code(), Some("invalid_transition"));
    fx.host().open_signin(&s).await.unwrap();
    let v = fx.bidder(0).sign_in(&s).await.unwrap();
    assert_eq!(v["first"], true);
    let v = fx.bidder(0).sign_in(&s).await.unwrap();
    assert_eq!(v["first"], false);
    // A host cannot sign in as a bidder.
    let e = fx.host().sign_in(&s).await.unwrap_err();
    assert_eq!(e.code(), Some("forbidden"));

    // Before the deadline nobody — not even the host — learns who signed in.
    let host_view = fx.state(Some(&fx.w.host.token)).await;
    let public_view = fx.state(None).await;
    let own_view = fx.state(Some(&fx.w.bidders[0].token)).await;
    let other_view = fx.state(Some(&fx.w.bidders[1].token)).await;
    for v in [&host_view, &public_view, &other_view] {
        assert!(!v.to_string().contains(&fx.org(0)), "{v}");
        assert_eq!(v["state"]["signins"], json!([]));
    }
    assert_eq!(own_view["me"]["signed_in"], true);
    assert_eq!(other_view["me"]["signed_in"], false);
    let rows = rows_of(&fx.app, "signins").await;
    assert!(!rows.contains(&fx.org(0)) && !rows.contains(&s), "{rows}");

    // Views: staff for the section's host, tenderer and supervisor; public
    // for everyone else, each with its own `me`.
    for (token, view) in [
        (&fx.w.host.token, "staff"),
        (&fx.w.tenderer.token, "staff"),
        (&fx.w.supervisor.token, "staff"),
        (&fx.w.host_b.token, "public"),
        (&fx.w.supervisor_b.token, "public"),
        (&fx.w.expert.token, "public"),
        (&fx.w.custodians[0].person.token, "public"),
        (&fx.w.bidders[1].token, "public"),
    ] {
        let w = fx.watch(Some(token), 0).await;
        assert_eq!(w.hello["view"], view, "{}", w.hello);
    }
    let custodian = fx.state(Some(&fx.w.custodians[2].person.token)).await;
    assert_eq!(custodian["me"]["position"], 3);
    assert_eq!(custodian["me"]["released"], false);

    // Staff-only events (the draft's creation) never reach the public.
    let mut public = fx.watch(None, 0).await;
    let snap = public.next().await.unwrap().unwrap();
    assert_eq!(snap["type"], "snapshot");
    let mut staff = fx.watch(Some(&fx.w.host.token), 0).await;
    staff.next().await.unwrap().unwrap();
    let mut public_kinds = Vec::new();
    let mut staff_kinds = Vec::new();
    for (w, kinds) in [
        (&mut public, &mut public_kinds),
        (&mut staff, &mut staff_kinds),
    ] {
        loop {
            let f = w.next_within(Duration::from_millis(500)).await;
            match f {
                Ok(Some(f)) if f["type"] == "event" => {
                    kinds.push(f["kind"].as_str().unwrap().to_string())
                }
                Ok(Some(_)) => {}
                _ => break,
            }
        }
    }
    assert!(
        staff_kinds.contains(&"section.created".to_string()),
        "{staff_kinds:?}"
    );
    assert!(
        !public_kinds.contains(&"section.created".to_string()),
        "{public_kinds:?}"
    );
    assert!(public_kinds.contains(&"section.published".to_string()));

    // At the sealing the sign-ins come out, for the bidders whose bid stands.
    fx.pass_deadline().await;
    fx.wait_phase("decrypting").await;
    let after = fx.state(None).await;
    let signins = after["state"]["signins"].as_array().unwrap();
    assert_eq!(signins.len(), 1, "{after}");
    assert_eq!(signins[0]["bidder"], fx.org(0).as_str());
    // Bidder 2 did not bid: it cannot sign in now.
    let e = fx.bidder(2).sign_in(&s).await.unwrap_err();
    assert_eq!(e.code(), Some("forbidden"));
    fx.bidder(1).sign_in(&s).await.unwrap();
    let after = fx.state(None).await;
    assert_eq!(after["state"]["signins"].as_array().unwrap().len(), 2);
    fx.app.stop().await;
}

#[actix_web::test]
async fn a_watcher_that_reconnects_gets_exactly_the_events_it_missed() {
    let fx = two_bid_section(|_| {}).await;
    let now = fx.state(None).await["seq"].as_i64().unwrap();
    let mut w = fx.watch(None, now).await;
    let first = notices(&fx, 3, "开标前公告").await;
    let got = next_events(&mut w, 3).await;
    let last_seen = got.last().unwrap()["seq"].as_i64().unwrap();
    assert_eq!(last_seen, *first.last().unwrap());
    w.close().await;

    let missed = notices(&fx, 5, "断线期间公告").await;
    let mut w = fx.watch(None, last_seen).await;
    assert_eq!(w.hello["seq"], *missed.last().unwrap());
    let snap = w.next().await.unwrap().unwrap();
    assert_eq!(snap["type"], "snapshot");
    assert_eq!(snap["seq"], *missed.last().unwrap());
    let replay = next_events(&mut w, 5).await;
    let seqs: Vec<i64> = replay.iter().map(|f| f["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, missed, "every missed event once, in order");
    // Then live events, without a gap or a repeat.
    let live = notices(&fx, 2, "恢复后公告").await;
    let next = next_events(&mut w, 2).await;
    let seqs: Vec<i64> = next.iter().map(|f| f["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, live);
    // Clients learn the server's clock.
    w.send_text(r#"{"type":"ping","t":1}"#).await.unwrap();
    let pong = w.until(WAIT, |f| f["type"] == "pong").await.unwrap();
    assert_eq!(pong["clock"]["now_ms"], fx.app.now().millis());
    assert_eq!(pong["clock"]["rate"], 0.0, "the tests' clock stands still");
    fx.app.stop().await;
}

/// A TCP relay in front of the app whose connections can be cut, as a
/// network change or a sleeping laptop cuts them.
struct Relay {
    base: String,
    links: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl Relay {
    async fn to(base: &str) -> Relay {
        let target = base.trim_start_matches("http://").to_string();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let relay = Relay {
            base: format!("http://{}", listener.local_addr().unwrap()),
            links: Default::default(),
        };
        let links = relay.links.clone();
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let target = target.clone();
                let link = tokio::spawn(async move {
                    let mut outbound = tokio::net::TcpStream::connect(&target).await.unwrap();
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                });
                links.lock().unwrap().push(link.abort_handle());
            }
        });
        relay
    }

    /// Drops every connection through the relay.
    fn cut(&self) {
        for l in self.links.lock().unwrap().drain(..) {
            l.abort();
        }
    }
}

/// The sequences of the next `n` events (a resumed connection begins
/// with a snapshot, which is not an event).
async fn event_seqs(w: &mut Watcher, n: usize) -> Vec<i64> {
    let mut got = Vec::new();
    while got.len() < n {
        let f = w.next_within(WAIT).await.unwrap().expect("not closed");
        if f["type"] == "event" {
            got.push(f["seq"].as_i64().unwrap());
        }
    }
    got
}

/// A resuming watcher whose connection drops joins again by itself after
/// the last event it saw, and misses nothing (the demo's watchers, and
/// `kaibiao room watch`).
#[actix_web::test]
async fn a_resuming_watcher_rejoins_after_its_connection_drops_and_misses_nothing() {
    let fx = two_bid_section(|_| {}).await;
    let relay = Relay::to(&fx.app.base).await;
    let now = fx.state(None).await["seq"].as_i64().unwrap();
    let mut w = Watcher::connect(&relay.base, &fx.section, None, now)
        .await
        .unwrap()
        .resuming();
    let mut sent = notices(&fx, 2, "断线前公告").await;
    let mut seen = event_seqs(&mut w, 2).await;
    relay.cut();
    sent.extend(notices(&fx, 3, "断线期间公告").await);
    seen.extend(event_seqs(&mut w, 3).await);
    sent.extend(notices(&fx, 1, "恢复后公告").await);
    seen.extend(event_seqs(&mut w, 1).await);
    assert_eq!(seen, sent, "every event once, in order, across the drop");
    fx.app.stop().await;
}

/// A WebSocket client that completes the handshake and then reads only
/// when told to, with a tiny receive buffer: a watcher that falls behind.
struct Stalled {
    stream: tokio::net::TcpStream,
    buf: Vec<u8>,
}

impl Stalled {
    async fn connect(base: &str, path: &str) -> Stalled {
        let addr: std::net::SocketAddr = base.trim_start_matches("http://").parse().unwrap();
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let mut stream = socket.connect(addr).await.unwrap();
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        stream.write_all(req.as_bytes()).await.unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 1024];
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = stream.read(&mut chunk).await.unwrap();
            assert!(n > 0, "closed during the handshake");
            buf.extend_from_slice(&chunk[..n]);
        }
        let end = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        assert!(
            buf.starts_with(b"HTTP/1.1 101"),
            "{}",
            String::from_utf8_lossy(&buf)
        );
        buf.drain(..end);
        Stalled { stream, buf }
    }

    /// The next text frame (server frames are unmasked).
    async fn frame(&mut self) -> Option<Value> {
        loop {
            if let Some((len, payload_at)) = Self::header(&self.buf) {
                if self.buf.len() >= payload_at + len {
                    let op = self.buf[0] & 0x0f;
                    let payload = self.buf[payload_at..payload_at + len].to_vec();
                    self.buf.drain(..payload_at + len);
                    match op {
                        1 => return Some(serde_json::from_slice(&payload).unwrap()),
                        8 => return None,
                        _ => continue,
                    }
                }
            }
            let mut chunk = vec![0u8; 65536];
            let n = tokio::time::timeout(WAIT, self.stream.read(&mut chunk))
                .await
                .expect("a frame in time")
                .unwrap();
            if n == 0 {
                return None;
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    fn header(b: &[u8]) -> Option<(usize, usize)> {
        if b.len() < 2 {
            return None;
        }
        match b[1] & 0x7f {
            126 if b.len() >= 4 => Some((u16::from_be_bytes([b[2], b[3]]) as usize, 4)),
            127 if b.len() >= 10 => Some((
                u64::from_be_bytes(b[2..10].try_into().unwrap()) as usize,
                10,
            )),
            126 | 127 => None,
            n => Some((n as usize, 2)),
        }
    }
}

#[actix_web::test]
async fn a_lagging_watcher_gets_a_fresh_snapshot_and_holds_nobody_up() {
    let fx = two_bid_section(|c| {
        c.room.queue_frames = 32;
        c.room.send_timeout_ms = 20_000;
    })
    .await;
    let now = fx.state(None).await["seq"].as_i64().unwrap();
    // Both join at the present: a snapshot, then only what happens next.
    let path = format!("/api/sections/{}/room?after={now}", fx.section);
    let mut slow = Stalled::connect(&fx.app.base, &path).await;
    let mut brisk = fx.watch(None, now).await;
    brisk.next().await.unwrap().unwrap(); // snapshot

    // Far more than the queue and every buffer on the way hold (the kernel
    // alone takes some 3 MB on loopback), while the slow watcher reads
    // nothing: 800 notices of about 6 KB.
    let long = "公告".repeat(990);
    let reader = actix_web::rt::spawn(async move { next_events(&mut brisk, 800).await });
    let sent = notices(&fx, 800, &long).await;
    let got = reader.await.unwrap();
    let seqs: Vec<i64> = got.iter().map(|f| f["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, sent, "the brisk watcher got everything, in order");

    // The slow one reads now: a fresh snapshot replaced what it missed, and
    // every event after it follows without a gap or a repeat.
    let target = *sent.last().unwrap();
    let mut last = 0;
    let mut resyncs = 0;
    let mut events = 0;
    let mut joined = false;
    while last < target {
        let f = slow.frame().await.expect("still connected");
        match f["type"].as_str() {
            Some("snapshot") => {
                let s = f["seq"].as_i64().unwrap();
                assert!(s >= last, "a snapshot never goes back");
                if joined {
                    resyncs += 1;
                    assert_eq!(
                        f["state"]["notices"].as_array().unwrap().last().unwrap()["text"],
                        format!("{long} {}", (s - sent[0]) as usize),
                        "the snapshot is the state at its sequence"
                    );
                }
                joined = true;
                last = s;
            }
            Some("event") => {
                let s = f["seq"].as_i64().unwrap();
                assert_eq!(s, last + 1, "no gap and no repeat");
                last = s;
                events += 1;
            }
            _ => {}
        }
    }
    assert!(resyncs >= 1, "the slow watcher was resynchronised");
    assert!(
        events < sent.len(),
        "it did fall behind (else this test proves nothing)"
    );
    assert!(
        fx.app
            .services()
            .metrics
            .counter("kaibiao_room_resyncs_total", &[])
            >= 1
    );
    // And it carries on with live events.
    let more = notices(&fx, 1, "之后").await;
    loop {
        let f = slow.frame().await.expect("still connected");
        if f["type"] == "event" {
            assert_eq!(f["seq"].as_i64(), Some(more[0]));
            break;
        }
    }
    fx.app.stop().await;
}

#[actix_web::test]
async fn floods_malformed_binary_and_oversized_frames_are_cut_off_without_harm() {
    let fx = two_bid_section(|_| {}).await;
    // Malformed and unknown frames get error frames; too many close the socket.
    let mut w = fx.watch(None, 0).await;
    w.send_text("{not json").await.unwrap();
    let e = w.until(WAIT, |f| f["type"] == "error").await.unwrap();
    assert_eq!(e["error"], "malformed_frame");
    w.send_text(r#"{"type":"confirm","record_hash":"x"}"#)
        .await
        .unwrap();
    let e = w.until(WAIT, |f| f["type"] == "error").await.unwrap();
    assert_eq!(e["error"], "unknown_message");
    w.send_binary(vec![1, 2, 3]).await.unwrap();
    let e = w.until(WAIT, |f| f["type"] == "error").await.unwrap();
    assert_eq!(e["error"], "bad_frame");
    for _ in 0..4 {
        w.send_text("[]").await.unwrap();
    }
    let mut closed = false;
    for _ in 0..20 {
        match w.next_within(Duration::from_secs(5)).await {
            Ok(None) | Err(_) => {
                closed = true;
                break;
            }
            Ok(Some(_)) => {}
        }
    }
    assert!(closed, "closed after too many malformed frames");

    // A flood of pings: closed with a policy violation.
    let mut w = fx.watch(None, 0).await;
    for i in 0..60 {
        if w.send_text(&format!(r#"{{"type":"ping","t":{i}}}"#))
            .await
            .is_err()
        {
            break;
        }
    }
    let mut pongs = 0;
    loop {
        match w.next_within(Duration::from_secs(5)).await {
            Ok(Some(f)) if f["type"] == "pong" => pongs += 1,
            Ok(Some(_)) => {}
            _ => break,
        }
    }
    assert!(pongs <= 21, "the burst allowance is 20, got {pongs}");

    // An oversized frame: closed.
    let mut w = fx.watch(None, 0).await;
    w.send_text(&format!(r#"{{"type":"ping","t":"{}"}}"#, "x".repeat(8000)))
        .await
        .unwrap();
    let mut closed = false;
    for _ in 0..20 {
        match w.next_within(Duration::from_secs(5)).await {
            Ok(None) | Err(_) => {
                closed = true;
                break;
            }
            Ok(Some(_)) => {}
        }
    }
    assert!(closed, "closed after an oversized frame");

    // Meanwhile the room and the server are fine.
    let mut ok = fx.watch(None, 0).await;
    let seq = notices(&fx, 1, "仍然正常").await[0];
    let f = next_events(&mut ok, 1).await;
    assert!(f[0]["seq"].as_i64().unwrap() <= seq);
    fx.app.stop().await;
}

#[actix_web::test]
async fn an_idempotency_key_answers_a_repeat_once_and_refuses_another_request() {
    let fx = two_bid_section(|_| {}).await;
    let s = &fx.section;
    let path = format!("/api/sections/{s}/opening/notices");
    let a: Value = fx
        .host()
        .post_once(
            &path,
            &json!({"text": "请各投标人准时签到"}),
            "notice-key-1",
        )
        .await
        .unwrap();
    let b: Value = fx
        .host()
        .post_once(
            &path,
            &json!({"text": "请各投标人准时签到"}),
            "notice-key-1",
        )
        .await
        .unwrap();
    assert_eq!(a, b, "the repeat gets the first answer");
    let st = fx.state(None).await;
    assert_eq!(st["state"]["notices"].as_array().unwrap().len(), 1);
    // The same key with another body is another request: refused, and the
    // second notice is not silently dropped in favour of the first answer.
    let e = fx
        .host()
        .post_once::<Value>(&path, &json!({"text": "另一条通知"}), "notice-key-1")
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("idempotency_key_reused"));
    assert_eq!(e.status(), Some(422));
    // And on another route.
    let e = fx
        .host()
        .post_once::<Value>(
            &format!("/api/sections/{s}/opening/signin/open"),
            &json!({}),
            "notice-key-1",
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("idempotency_key_reused"));
    let st = fx.state(None).await;
    assert_eq!(
        st["state"]["notices"].as_array().unwrap().len(),
        1,
        "nothing of a refused request happened"
    );
    assert!(!st["state"]["signin_open"].as_bool().unwrap());
    let e = fx
        .host()
        .post_once::<Value>(&path, &json!({"text": "x"}), "bad key with spaces")
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("bad_request"));
    fx.app.stop().await;
}

/// The first presence frame made after `since_us` (microseconds since the
/// epoch, as the frame's `at_us`).
async fn presence_after(w: &mut Watcher, since_us: i64) -> Value {
    w.until(WAIT, |f| {
        f["type"] == "presence" && f["at_us"].as_i64().is_some_and(|t| t > since_us)
    })
    .await
    .unwrap()
}

fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64
}

#[actix_web::test]
async fn presence_counts_who_watches_and_hides_bidders_until_the_deadline() {
    let fx = two_bid_section(|_| {}).await;
    let mut public = fx.watch(None, 0).await;
    let mut staff = fx.watch(Some(&fx.w.host.token), 0).await;
    let _bidder = fx.watch(Some(&fx.w.bidders[0].token), 0).await;
    let all_in = now_us();
    // Before the deadline even the number of bidders watching is secret:
    // three watch, two are counted.
    for w in [&mut public, &mut staff] {
        let p = presence_after(w, all_in).await;
        assert!(p["counts"].get("bidder").is_none(), "{p}");
        assert!(p.get("bidders_online").is_none(), "{p}");
        assert!(p["counts"]["host"].as_u64() >= Some(1), "{p}");
    }
    fx.pass_deadline().await;
    fx.wait_phase("decrypting").await;
    // After it, the counts name bidders; only the staff see which.
    let _again = fx.watch(Some(&fx.w.bidders[0].token), 0).await;
    let p = staff
        .until(WAIT, |f| {
            f["type"] == "presence" && f["counts"]["bidder"].as_u64() >= Some(1)
        })
        .await
        .unwrap();
    assert!(
        p["bidders_online"]
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b["bidder"] == fx.org(0).as_str()),
        "{p}"
    );
    let p = public
        .until(WAIT, |f| {
            f["type"] == "presence" && f["counts"]["bidder"].as_u64() >= Some(1)
        })
        .await
        .unwrap();
    assert!(p.get("bidders_online").is_none(), "{p}");
    fx.app.stop().await;
}
