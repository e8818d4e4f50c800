//! The opening from the client side: watching the room over WebSocket, the
//! bidder's sign-in, decryption (`bidders` modes), confirmation and
//! objections; the custodian's key release; the host's controls; the
//! supervisor's countersignatures. Every change is sent with an
//! idempotency key, so a retried call never acts twice.

use std::path::Path;
use std::time::Duration;

use awc::ws;
use ed25519_dalek::SigningKey;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};

use super::{read_json, Client, ClientError, ClientResult, ENVELOPE_FILE};
use crate::crypto::envelope::{self, SignedEnvelope, SummaryFields};
use crate::crypto::opening::{
    json_hash, Closing, Confirmation, IncidentRuling, KeyRelease, SignedKeyRelease,
    KEY_RELEASE_FORMAT,
};
use crate::crypto::x25519;

fn fresh_key() -> String {
    hex::encode(crate::crypto::random_bytes::<16>())
}

fn check(m: &str) -> ClientError {
    ClientError::Check(m.into())
}

impl Client {
    fn opening_path(section: &str, tail: &str) -> String {
        format!("/api/sections/{section}/opening{tail}")
    }

    async fn act(&self, section: &str, tail: &str, body: Value) -> ClientResult<Value> {
        self.post_once(&Self::opening_path(section, tail), &body, &fresh_key())
            .await
    }

    /// The opening as this caller sees it (state, `me`, the server's clock).
    pub async fn opening(&self, section: &str) -> ClientResult<Value> {
        self.get(&Self::opening_path(section, "")).await
    }

    /// The server's clock now (it may run accelerated in a demo).
    pub async fn server_now(&self, section: &str) -> ClientResult<i64> {
        let v = self.opening(section).await?;
        v["clock"]["now_ms"]
            .as_i64()
            .ok_or_else(|| check("the platform did not say its time"))
    }

    pub async fn open_signin(&self, section: &str) -> ClientResult<Value> {
        self.act(section, "/signin/open", json!({})).await
    }

    pub async fn sign_in(&self, section: &str) -> ClientResult<Value> {
        self.act(section, "/signin", json!({})).await
    }

    /// A custodian releases its key for `section`: the statement names the
    /// position and keys published in the section's parameters, and is
    /// signed with the custodian's identity key.
    pub async fn release_key(
        &self,
        section: &str,
        identity: &SigningKey,
        key: &x25519::SecretKey,
    ) -> ClientResult<Value> {
        let (params, _, _) = self.params(section).await?;
        let public_key = hex::encode(key.public_key());
        let identity_key = hex::encode(identity.verifying_key().to_bytes());
        let me = params
            .custodians
            .iter()
            .find(|c| c.section_key == public_key)
            .ok_or_else(|| check("this key is not one of the section's custodian keys"))?;
        if me.identity_key != identity_key {
            return Err(check(
                "this identity key is not the one the custodian registered the section key with",
            ));
        }
        let release = SignedKeyRelease::sign(
            KeyRelease {
                format: KEY_RELEASE_FORMAT.into(),
                section_id: section.into(),
                custodian: me.user_id.to_string(),
                position: me.position as u32,
                public_key,
                secret_key: hex::encode(*key.to_bytes()),
                identity_key,
                released_at_ms: self.server_now(section).await?,
            },
            identity,
        );
        self.act(
            section,
            "/key-releases",
            serde_json::to_value(&release).expect("release"),
        )
        .await
    }

    /// A bidder decrypts its own bid: unwraps the BMK from its copy in the
    /// sealed bid directory and hands it to the platform.
    pub async fn decrypt_own(
        &self,
        bid_dir: &Path,
        encryption: &x25519::SecretKey,
    ) -> ClientResult<Value> {
        let signed: SignedEnvelope = read_json(&bid_dir.join(ENVELOPE_FILE))?;
        let (env, hash) =
            envelope::parse_signed(&signed).map_err(|e| ClientError::Check(e.to_string()))?;
        let bmk = envelope::open_bidder_copy(&env, encryption)
            .map_err(|_| check("the bid's own copy does not open with this encryption key"))?;
        self.act(
            &env.section_id,
            "/decryptions",
            json!({"envelope_hash": hash, "bmk": hex::encode(*bmk)}),
        )
        .await
    }

    /// The announced record, with its hash checked.
    pub async fn opening_record(&self, section: &str) -> ClientResult<Value> {
        let v: Value = self
            .get(&format!("/api/public/sections/{section}/opening-record"))
            .await?;
        if json_hash(&v["record"]) != v["record_hash"].as_str().unwrap_or_default() {
            return Err(check(
                "the record does not hash to the hash the platform states",
            ));
        }
        Ok(v)
    }

    /// A bidder confirms the record after checking that it states its own
    /// bid as sealed (when `own` is given), by signing the record's hash.
    pub async fn confirm(
        &self,
        section: &str,
        org: &str,
        signing: &SigningKey,
        own: Option<&SummaryFields>,
    ) -> ClientResult<Value> {
        let r = self.opening_record(section).await?;
        let hash = r["record_hash"].as_str().unwrap_or_default().to_string();
        if let Some(own) = own {
            let mine = r["record"]["bids"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|b| b["bidder"] == org)
                .ok_or_else(|| check("our bid is missing from the record"))?;
            if mine["summary"] != serde_json::to_value(own).expect("fields") {
                return Err(check(
                    "the record states our bid differently from what we sealed",
                ));
            }
        }
        let signature = Confirmation::new(section, org, &hash).sign(signing);
        self.act(
            section,
            "/confirmations",
            json!({"record_hash": hash, "signature": signature}),
        )
        .await
    }

    pub async fn object(&self, section: &str, text: &str) -> ClientResult<Value> {
        self.act(section, "/objections", json!({"text": text}))
            .await
    }

    pub async fn answer(&self, section: &str, objection: &str, text: &str) -> ClientResult<Value> {
        self.act(
            section,
            &format!("/objections/{objection}/answer"),
            json!({"text": text}),
        )
        .await
    }

    pub async fn extend_window(
        &self,
        section: &str,
        minutes: i64,
        reason: &str,
    ) -> ClientResult<Value> {
        self.act(
            section,
            "/extend",
            json!({"minutes": minutes, "reason": reason}),
        )
        .await
    }

    pub async fn declare_incident(
        &self,
        section: &str,
        reason: &str,
        bidders: &[String],
    ) -> ClientResult<Value> {
        self.act(
            section,
            "/incidents",
            json!({"reason": reason, "bidders": bidders}),
        )
        .await
    }

    pub async fn resume(&self, section: &str) -> ClientResult<Value> {
        self.act(section, "/resume", json!({})).await
    }

    pub async fn close_opening(&self, section: &str) -> ClientResult<Value> {
        self.act(section, "/close", json!({})).await
    }

    pub async fn notice(&self, section: &str, text: &str) -> ClientResult<Value> {
        self.act(section, "/notices", json!({"text": text})).await
    }

    /// The supervisor upholds an incident by signing its ruling.
    pub async fn countersign_incident(
        &self,
        section: &str,
        ruling: &IncidentRuling,
        key: &SigningKey,
    ) -> ClientResult<Value> {
        self.act(
            section,
            &format!("/incidents/{}/countersign", ruling.incident_id),
            json!({"signature": ruling.sign(key)}),
        )
        .await
    }

    /// The supervisor countersigns the closed record, after checking the
    /// platform's signature on it.
    pub async fn countersign(&self, section: &str, key: &SigningKey) -> ClientResult<Value> {
        let r = self.opening_record(section).await?;
        let closing: Closing = serde_json::from_value(r["closing"].clone())
            .map_err(|_| check("the record is not closed yet"))?;
        let platform = self.platform_key().await?;
        if !closing.verify_platform(
            &platform,
            r["platform_signature"].as_str().unwrap_or_default(),
        ) {
            return Err(check(
                "the platform's signature on the closing statement does not verify",
            ));
        }
        if closing.record_hash != r["record_hash"].as_str().unwrap_or_default() {
            return Err(check("the closing statement is for another record"));
        }
        self.act(
            section,
            "/countersign",
            json!({"signature": closing.countersign(key)}),
        )
        .await
    }

    /// A one-minute ticket to open the room's socket without a header.
    pub async fn room_ticket(&self, section: &str) -> ClientResult<String> {
        let v: Value = self
            .post(&format!("/api/sections/{section}/room/tickets"), &json!({}))
            .await?;
        v["ticket"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| check("no ticket in the answer"))
    }
}

/// The bidder's own summary, decrypted from its sealed bid directory (to
/// check the announced record against).
pub fn own_summary(bid_dir: &Path, encryption: &x25519::SecretKey) -> ClientResult<SummaryFields> {
    let signed: SignedEnvelope = read_json(&bid_dir.join(ENVELOPE_FILE))?;
    let (env, _) =
        envelope::parse_signed(&signed).map_err(|e| ClientError::Check(e.to_string()))?;
    let bmk = envelope::open_bidder_copy(&env, encryption)
        .map_err(|_| check("the bid's own copy does not open with this encryption key"))?;
    let keys = envelope::part_keys(&env, &bmk).map_err(|e| ClientError::Check(e.to_string()))?;
    let ct = std::fs::read(bid_dir.join("summary.part"))?;
    let s = envelope::open_summary(&env, &keys[envelope::PART_SUMMARY], &ct)
        .map_err(|e| ClientError::Check(e.to_string()))?;
    Ok(s.summary.fields)
}

/// A watcher of a room: the frames the platform pushes, as JSON.
///
/// A watcher made [`Watcher::resuming`] survives a dropped connection — a
/// network change, a laptop asleep past the room's heartbeat — by joining
/// again after the last sequence it saw: the room then sends exactly the
/// events it missed (or a fresh snapshot), so nothing is lost.
pub struct Watcher {
    framed: actix_codec::Framed<awc::BoxedSocket, ws::Codec>,
    /// The `hello` frame (of the latest connection).
    pub hello: Value,
    base: String,
    section: String,
    token: Option<String>,
    /// The sequence of the last event or snapshot seen.
    seq: i64,
    resume: bool,
}

impl Watcher {
    /// Joins `section`'s room (as the holder of `token`, or as the public),
    /// resuming after sequence `after`.
    pub async fn connect(
        base: &str,
        section: &str,
        token: Option<&str>,
        after: i64,
    ) -> ClientResult<Watcher> {
        let framed = Self::open(base, section, token, after).await?;
        let mut w = Watcher {
            framed,
            hello: Value::Null,
            base: base.to_string(),
            section: section.to_string(),
            token: token.map(str::to_string),
            seq: after,
            resume: false,
        };
        w.greet().await?;
        Ok(w)
    }

    /// Joins again by itself, after the last sequence seen, when the
    /// connection drops.
    pub fn resuming(mut self) -> Self {
        self.resume = true;
        self
    }

    async fn open(
        base: &str,
        section: &str,
        token: Option<&str>,
        after: i64,
    ) -> ClientResult<actix_codec::Framed<awc::BoxedSocket, ws::Codec>> {
        let url = format!(
            "{}/api/sections/{section}/room?after={after}",
            base.replacen("http", "ws", 1)
        );
        let mut req = awc::Client::builder()
            .timeout(Duration::from_secs(30))
            .finish()
            .ws(url)
            .max_frame_size(64 << 20);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let (_, framed) = req.connect().await.map_err(|e| match e {
            awc::error::WsClientError::InvalidResponseStatus(s) => ClientError::Api {
                status: s.as_u16(),
                code: "refused".into(),
                message: format!("the room refused the connection: HTTP {s}"),
                details: Value::Null,
            },
            other => ClientError::Transport(other.to_string()),
        })?;
        Ok(framed)
    }

    /// Reads the `hello` the room begins with.
    async fn greet(&mut self) -> ClientResult<()> {
        let hello = self
            .frame()
            .await?
            .ok_or_else(|| check("the room closed before saying hello"))?;
        if hello["type"] != "hello" {
            return Err(check("the room's first frame is not hello"));
        }
        self.hello = hello;
        Ok(())
    }

    /// The next frame of this connection (answering pings on the way):
    /// `None` when the room closed it on purpose (a policy, or the room is
    /// done); an error when it dropped, or the room gave up on it for
    /// silence — worth resuming.
    async fn frame(&mut self) -> ClientResult<Option<Value>> {
        let dropped = ClientError::Transport;
        loop {
            match self.framed.next().await {
                None => return Err(dropped("the connection ended".into())),
                Some(Err(e)) => return Err(dropped(e.to_string())),
                Some(Ok(ws::Frame::Text(t))) => {
                    let f: Value = serde_json::from_slice(&t)
                        .map_err(|e| check(&format!("a room frame is not JSON: {e}")))?;
                    if matches!(f["type"].as_str(), Some("event" | "snapshot")) {
                        self.seq = f["seq"].as_i64().unwrap_or(self.seq);
                    }
                    return Ok(Some(f));
                }
                Some(Ok(ws::Frame::Ping(p))) => {
                    self.framed
                        .send(ws::Message::Pong(p))
                        .await
                        .map_err(|e| dropped(e.to_string()))?;
                }
                Some(Ok(ws::Frame::Close(reason))) => {
                    let away = reason.is_some_and(|r| r.code == ws::CloseCode::Away);
                    return if away {
                        Err(dropped("the room stopped hearing this watcher".into()))
                    } else {
                        Ok(None)
                    };
                }
                Some(Ok(_)) => {}
            }
        }
    }

    /// The next frame (answering pings on the way); `None` when the room
    /// closed the connection. A resuming watcher joins again when the
    /// connection drops (up to five times in a row, a second apart).
    pub async fn next(&mut self) -> ClientResult<Option<Value>> {
        let mut attempts = 0;
        loop {
            match self.frame().await {
                Ok(f) => return Ok(f),
                Err(e) if !self.resume || attempts >= 5 => return Err(e),
                Err(_) => {
                    attempts += 1;
                    if attempts > 1 {
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                    let (base, section, token) =
                        (self.base.clone(), self.section.clone(), self.token.clone());
                    if let Ok(framed) =
                        Self::open(&base, &section, token.as_deref(), self.seq).await
                    {
                        self.framed = framed;
                        let _ = self.greet().await;
                    }
                }
            }
        }
    }

    /// The next frame within `limit`.
    pub async fn next_within(&mut self, limit: Duration) -> ClientResult<Option<Value>> {
        tokio::time::timeout(limit, self.next())
            .await
            .map_err(|_| check("no frame from the room in time"))?
    }

    /// Reads frames until one satisfies `pred`, within `limit`; returns it.
    pub async fn until(
        &mut self,
        limit: Duration,
        mut pred: impl FnMut(&Value) -> bool,
    ) -> ClientResult<Value> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next_within(left).await? {
                Some(f) if pred(&f) => return Ok(f),
                Some(_) => {}
                None => return Err(check("the room closed")),
            }
        }
    }

    pub async fn send_text(&mut self, text: &str) -> ClientResult<()> {
        self.framed
            .send(ws::Message::Text(text.to_string().into()))
            .await
            .map_err(|e| ClientError::Transport(e.to_string()))
    }

    pub async fn send_binary(&mut self, bytes: Vec<u8>) -> ClientResult<()> {
        self.framed
            .send(ws::Message::Binary(bytes.into()))
            .await
            .map_err(|e| ClientError::Transport(e.to_string()))
    }

    pub async fn close(mut self) {
        let _ = self.framed.send(ws::Message::Close(None)).await;
    }
}
