//! The client side of the platform's API, used by the command line (bidders,
//! custodians), the demo and the tests: sign-in, key registration with
//! proofs, fetching and checking published parameters, sealed-bid
//! submission with resumable uploads and receipt verification, withdrawal.

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use ed25519_dalek::SigningKey;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use crate::crypto::envelope::{self, SignedEnvelope, SignedWithdrawal, Withdrawal};
use crate::crypto::keyproof::{SectionKeyStatement, Statement};
use crate::crypto::translog::SignedReceipt;
use crate::crypto::{sha256_hex, x25519};
use crate::service::sections::SectionParams;
use actix_web::error::ParseError;
use awc::error::{ConnectError, SendRequestError};

mod draw;
pub mod opening;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The platform's answer in the error envelope; shown with every
    /// problem its details list (`field: message`).
    #[error("{code}: {message}{}", listed(details))]
    Api {
        status: u16,
        code: String,
        message: String,
        details: Value,
    },
    #[error("cannot reach the platform: {0}")]
    Transport(String),
    #[error("{0}")]
    Check(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// The envelope's `details`, one `\n  - field: message` line each.
fn listed(details: &Value) -> String {
    details
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| {
            format!(
                "\n  - {}: {}",
                d["field"].as_str().unwrap_or("?"),
                d["message"].as_str().unwrap_or("")
            )
        })
        .collect()
}

impl ClientError {
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Api { code, .. } => Some(code),
            _ => None,
        }
    }

    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
}

pub type ClientResult<T> = Result<T, ClientError>;

/// Whether a request failed on a connection that was already dead — a
/// pooled keep-alive connection the server closed while idle — so that it
/// may be sent again on a fresh one: always when it failed to connect or to
/// be written, and when its answer was cut off only if it is idempotent.
/// (awc reports a connection that closed before the answer's head as
/// `Connect(Disconnected)`, although the request was sent.)
fn stale_connection(e: &SendRequestError, idempotent: bool) -> bool {
    use std::io::ErrorKind::*;
    let dead = |k: std::io::ErrorKind| {
        matches!(
            k,
            BrokenPipe | ConnectionReset | ConnectionAborted | NotConnected | UnexpectedEof
        )
    };
    match e {
        SendRequestError::Connect(ConnectError::Disconnected) => idempotent,
        SendRequestError::Connect(_) => true,
        SendRequestError::Send(io) => dead(io.kind()),
        SendRequestError::Response(ParseError::Io(io)) => idempotent && dead(io.kind()),
        SendRequestError::Response(ParseError::Incomplete) => idempotent,
        _ => false,
    }
}

#[derive(Clone)]
pub struct Client {
    pub base: String,
    http: awc::Client,
    token: Option<String>,
}

/// A signed-in session, as kept in a file by the command line.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    pub server: String,
    pub token: String,
    pub expires_at: String,
}

impl Client {
    pub fn new(base: &str) -> Self {
        Self {
            base: base.trim_end_matches('/').to_string(),
            http: awc::Client::builder()
                // Idle connections are dropped before the server (5 s) would close them.
                .connector(
                    awc::Connector::new()
                        .timeout(Duration::from_secs(30))
                        .conn_keep_alive(Duration::from_secs(2)),
                )
                .timeout(Duration::from_secs(3600))
                .finish(),
            token: None,
        }
    }

    pub fn with_token(mut self, token: &str) -> Self {
        self.token = Some(token.to_string());
        self
    }

    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    fn req(&self, method: awc::http::Method, path: &str) -> awc::ClientRequest {
        let r = self.http.request(method, self.url(path));
        match &self.token {
            Some(t) => r.bearer_auth(t),
            None => r,
        }
    }

    async fn read<T: DeserializeOwned>(
        mut res: awc::ClientResponse<
            impl futures_util::Stream<Item = Result<Bytes, awc::error::PayloadError>> + Unpin,
        >,
    ) -> ClientResult<T> {
        let status = res.status().as_u16();
        let body = res
            .body()
            .limit(256 * 1024 * 1024)
            .await
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        if !(200..300).contains(&status) {
            let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            return Err(ClientError::Api {
                status,
                code: v["error"].as_str().unwrap_or("http_error").to_string(),
                message: v["message"]
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("HTTP {status}")),
                details: v["details"].clone(),
            });
        }
        serde_json::from_slice(if body.is_empty() { b"null" } else { &body })
            .map_err(|e| ClientError::Check(format!("unexpected answer from the platform: {e}")))
    }

    /// Sends a request made by `attempt`, again on a fresh connection when
    /// the pooled one turns out closed: a keep-alive connection the server
    /// closed while it sat idle (a client waiting for a deadline) fails on
    /// its next use, and that failure is no answer. A request the server
    /// may have seen is sent again only when it is `idempotent`.
    async fn send<F, Fut>(&self, idempotent: bool, attempt: F) -> ClientResult<awc::ClientResponse>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<awc::ClientResponse, SendRequestError>>,
    {
        let mut tries = 0;
        loop {
            match attempt().await {
                Ok(r) => return Ok(r),
                Err(e) if tries < 3 && stale_connection(&e, idempotent) => tries += 1,
                Err(e) => return Err(ClientError::Transport(e.to_string())),
            }
        }
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> ClientResult<T> {
        let res = self
            .send(true, || self.req(awc::http::Method::GET, path).send())
            .await?;
        Self::read(res).await
    }

    pub async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &impl Serialize,
    ) -> ClientResult<T> {
        let body = serde_json::to_value(body).map_err(|e| ClientError::Check(e.to_string()))?;
        let res = self
            .send(false, || {
                self.req(awc::http::Method::POST, path).send_json(&body)
            })
            .await?;
        Self::read(res).await
    }

    /// A POST the platform answers the same however often it is sent (a
    /// sealed envelope is recognised by its hash).
    pub async fn post_idempotent<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &impl Serialize,
    ) -> ClientResult<T> {
        let body = serde_json::to_value(body).map_err(|e| ClientError::Check(e.to_string()))?;
        let res = self
            .send(true, || {
                self.req(awc::http::Method::POST, path).send_json(&body)
            })
            .await?;
        Self::read(res).await
    }

    /// A PUT of a CSV document (the expert pool).
    pub async fn put_csv<T: DeserializeOwned>(&self, path: &str, csv: String) -> ClientResult<T> {
        let res = self
            .send(true, || {
                self.req(awc::http::Method::PUT, path)
                    .insert_header(("Content-Type", "text/csv; charset=utf-8"))
                    .send_body(csv.clone())
            })
            .await?;
        Self::read(res).await
    }

    /// A POST with an `Idempotency-Key`: repeating it with the same key gets
    /// the first answer and changes nothing.
    pub async fn post_once<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &impl Serialize,
        key: &str,
    ) -> ClientResult<T> {
        let body = serde_json::to_value(body).map_err(|e| ClientError::Check(e.to_string()))?;
        let res = self
            .send(true, || {
                self.req(awc::http::Method::POST, path)
                    .insert_header(("Idempotency-Key", key))
                    .send_json(&body)
            })
            .await?;
        Self::read(res).await
    }

    pub async fn login(&mut self, username: &str, password: &str) -> ClientResult<Session> {
        let v: Value = self
            .post(
                "/api/auth/login",
                &json!({"username": username, "password": password}),
            )
            .await?;
        let token = v["token"].as_str().unwrap_or_default().to_string();
        self.token = Some(token.clone());
        Ok(Session {
            server: self.base.clone(),
            token,
            expires_at: v["expires_at"].as_str().unwrap_or_default().to_string(),
        })
    }

    /// The signed-in user's organisation id.
    pub async fn my_org(&self) -> ClientResult<String> {
        let me: Value = self.get("/api/auth/me").await?;
        me["user"]["org_id"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| ClientError::Check("this account belongs to no organisation".into()))
    }

    pub async fn platform_key(&self) -> ClientResult<String> {
        let v: Value = self.get("/api/public/platform-key").await?;
        Ok(v["public_key"].as_str().unwrap_or_default().to_string())
    }

    /// Registers an Ed25519 key of `purpose` with a proof of possession.
    pub async fn register_ed25519(&self, purpose: &str, key: &SigningKey) -> ClientResult<Value> {
        let ch: Value = self
            .post("/api/keys/challenges", &json!({"purpose": purpose}))
            .await?;
        let pk = hex::encode(key.verifying_key().to_bytes());
        let proof = Statement {
            challenge: ch["nonce"].as_str().unwrap_or_default(),
            challenge_id: ch["id"].as_str().unwrap_or_default(),
            owner: ch["owner"].as_str().unwrap_or_default(),
            public_key: &pk,
            purpose,
        }
        .sign_ed25519(key);
        self.post(
            "/api/keys",
            &json!({"challenge_id": ch["id"], "public_key": pk, "proof": proof}),
        )
        .await
    }

    /// Registers the organisation's X25519 key with a proof of possession.
    pub async fn register_x25519(&self, key: &x25519::SecretKey) -> ClientResult<Value> {
        let ch: Value = self
            .post(
                "/api/keys/challenges",
                &json!({"purpose": "bidder_encryption"}),
            )
            .await?;
        let server: [u8; 32] = ch["server_public_key"]
            .as_str()
            .and_then(crate::crypto::hex_array)
            .ok_or_else(|| ClientError::Check("the challenge has no server key".into()))?;
        let pk = hex::encode(key.public_key());
        let proof = Statement {
            challenge: ch["nonce"].as_str().unwrap_or_default(),
            challenge_id: ch["id"].as_str().unwrap_or_default(),
            owner: ch["owner"].as_str().unwrap_or_default(),
            public_key: &pk,
            purpose: "bidder_encryption",
        }
        .mac_x25519(key, &server)
        .ok_or_else(|| ClientError::Check("the server's challenge key was refused".into()))?;
        self.post(
            "/api/keys",
            &json!({"challenge_id": ch["id"], "public_key": pk, "proof": proof}),
        )
        .await
    }

    /// A custodian registers its per-section X25519 key, signed with its identity key.
    pub async fn register_section_key(
        &self,
        section_id: &str,
        user_id: &str,
        identity: &SigningKey,
        key: &x25519::SecretKey,
    ) -> ClientResult<Value> {
        let pk = hex::encode(key.public_key());
        let identity_pk = hex::encode(identity.verifying_key().to_bytes());
        let signature = SectionKeyStatement {
            custodian: user_id,
            identity_key: &identity_pk,
            public_key: &pk,
            section_id,
        }
        .sign(identity);
        self.post(
            &format!("/api/sections/{section_id}/custodian-key"),
            &json!({"public_key": pk, "signature": signature}),
        )
        .await
    }

    /// The section's published parameters, checked against their hash.
    pub async fn params(&self, section_id: &str) -> ClientResult<(SectionParams, String, String)> {
        let path = format!("/api/public/sections/{section_id}/params");
        let mut res = self
            .send(true, || self.req(awc::http::Method::GET, &path).send())
            .await?;
        let claimed = res
            .headers()
            .get("x-params-hash")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        if !res.status().is_success() {
            return Self::read::<Value>(res)
                .await
                .map(|_| unreachable!("not a success"));
        }
        let body = res
            .body()
            .limit(16 * 1024 * 1024)
            .await
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        let json = String::from_utf8(body.to_vec())
            .map_err(|_| ClientError::Check("parameters are not UTF-8".into()))?;
        let (params, hash) = check_params(&json, claimed.as_deref())?;
        if params.section_id != section_id {
            return Err(ClientError::Check(
                "the platform sent the parameters of another section".into(),
            ));
        }
        Ok((params, hash, json))
    }

    /// Submits a sealed bid directory: the envelope, then each part from
    /// where the platform has it, resuming after interruptions; verifies,
    /// saves and returns the platform's promise (ADR 9) — or the receipt,
    /// when it is already there. [`Client::await_receipt`] waits for the
    /// receipt.
    pub async fn submit(
        &self,
        bid: &Path,
        progress: &mut dyn FnMut(u64, u64),
    ) -> ClientResult<SignedReceipt> {
        let signed: SignedEnvelope = read_json(&bid.join(ENVELOPE_FILE))?;
        let (env, hash) =
            envelope::parse_signed(&signed).map_err(|e| ClientError::Check(e.to_string()))?;
        // Resume a submission the platform already has; send the envelope otherwise.
        let mut status: Value = match self.get(&format!("/api/bids/{hash}")).await {
            Ok(v) => v,
            Err(e) if e.code() == Some("not_found") => {
                self.post_idempotent("/api/bids", &signed).await?
            }
            Err(e) => return Err(e),
        };
        let total: u64 = env.parts.iter().map(|p| p.length).sum();
        let mut attempts = 0;
        loop {
            if let Some(p) = status.get("promise").filter(|r| !r.is_null()) {
                return self.keep_promise(bid, &hash, p, PROMISE_FILE);
            }
            if status.get("receipt").is_some_and(|r| !r.is_null()) {
                return self.keep_receipt(bid, &hash, &status["receipt"], RECEIPT_FILE);
            }
            let parts = status["parts"].as_array().cloned().unwrap_or_default();
            let done: u64 = parts
                .iter()
                .map(|p| p["received"].as_u64().unwrap_or(0))
                .sum();
            progress(done, total);
            let Some(next) = parts.iter().find(|p| p["complete"] != true) else {
                // Everything is stored but no promise: ask again.
                status = self.get(&format!("/api/bids/{hash}")).await?;
                if ["promise", "receipt"]
                    .iter()
                    .all(|k| status.get(*k).is_none_or(|r| r.is_null()))
                {
                    return Err(ClientError::Check(format!(
                        "the bid is {} without a promise or a receipt",
                        status["state"]
                    )));
                }
                continue;
            };
            let name = next["name"].as_str().unwrap_or_default().to_string();
            let offset = next["received"].as_u64().unwrap_or(0);
            let length = next["length"].as_u64().unwrap_or(0);
            match self
                .put_part(
                    bid,
                    &hash,
                    &name,
                    offset,
                    length,
                    done - offset,
                    total,
                    progress,
                )
                .await
            {
                Ok(v) => status = v,
                Err(e) => {
                    attempts += 1;
                    let retry = matches!(&e, ClientError::Transport(_))
                        || matches!(
                            e.code(),
                            Some(
                                "upload_offset"
                                    | "upload_interrupted"
                                    | "upload_in_progress"
                                    | "unavailable"
                            )
                        );
                    if !retry || attempts > 5 {
                        return Err(e);
                    }
                    tokio::time::sleep(Duration::from_millis(200 * attempts)).await;
                    status = self.get(&format!("/api/bids/{hash}")).await?;
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn put_part(
        &self,
        bid: &Path,
        hash: &str,
        name: &str,
        offset: u64,
        length: u64,
        before: u64,
        total: u64,
        progress: &mut dyn FnMut(u64, u64),
    ) -> ClientResult<Value> {
        let mut file = tokio::fs::File::open(bid.join(format!("{name}.part"))).await?;
        if file.metadata().await?.len() != length {
            return Err(ClientError::Check(format!(
                "{name}.part is not {length} bytes long"
            )));
        }
        file.seek(std::io::SeekFrom::Start(offset)).await?;
        let (tx, rx) = tokio::sync::mpsc::channel::<u64>(64);
        let stream =
            futures_util::stream::unfold((file, tx, 0u64), |(mut f, tx, sent)| async move {
                let mut buf = vec![0u8; 1 << 20];
                match f.read(&mut buf).await {
                    Ok(0) => None,
                    Ok(n) => {
                        buf.truncate(n);
                        let _ = tx.try_send(sent + n as u64);
                        Some((
                            Ok::<Bytes, std::io::Error>(Bytes::from(buf)),
                            (f, tx, sent + n as u64),
                        ))
                    }
                    Err(e) => Some((Err(e), (f, tx, sent))),
                }
            });
        let send = self
            .req(
                awc::http::Method::PUT,
                &format!("/api/bids/{hash}/parts/{name}?offset={offset}"),
            )
            .insert_header(("Content-Type", "application/octet-stream"))
            .no_decompress()
            .send_stream(Box::pin(stream));
        let mut rx = rx;
        let mut send = std::pin::pin!(send);
        let res = loop {
            tokio::select! {
                r = &mut send => break r,
                Some(sent) = rx.recv() => progress(before + offset + sent, total),
            }
        };
        let res = res.map_err(|e| ClientError::Transport(e.to_string()))?;
        Self::read(res).await
    }

    /// A promise or receipt from the platform's answer, with the platform
    /// key the bid directory's section parameters name.
    fn signed_answer(bid: &Path, v: &Value) -> ClientResult<(SignedReceipt, String)> {
        let signed: SignedReceipt =
            serde_json::from_value(v.clone()).map_err(|e| ClientError::Check(e.to_string()))?;
        let params: SectionParams = read_json(&bid.join(PARAMS_FILE))?;
        Ok((signed, params.platform_key))
    }

    /// Verifies a promise (ADR 9) from the platform's answer and saves it
    /// in the bid directory as `file`.
    fn keep_promise(
        &self,
        bid: &Path,
        hash: &str,
        v: &Value,
        file: &str,
    ) -> ClientResult<SignedReceipt> {
        let (promise, platform_key) = Self::signed_answer(bid, v)?;
        promise
            .verify_promise(&platform_key, hash)
            .map_err(|e| ClientError::Check(format!("the promise does not verify: {e}")))?;
        std::fs::write(
            bid.join(file),
            serde_json::to_vec_pretty(&promise).expect("promise"),
        )?;
        Ok(promise)
    }

    /// Verifies a receipt from the platform's answer — and, if the bid
    /// directory keeps its promise (`file` with `promise` for `receipt`),
    /// that it says everything the promise said — and saves it as `file`.
    fn keep_receipt(
        &self,
        bid: &Path,
        hash: &str,
        v: &Value,
        file: &str,
    ) -> ClientResult<SignedReceipt> {
        let (receipt, platform_key) = Self::signed_answer(bid, v)?;
        receipt
            .verify(&platform_key, hash)
            .map_err(|e| ClientError::Check(format!("the receipt does not verify: {e}")))?;
        let promise_file = bid.join(file.replace("receipt", "promise"));
        if promise_file.exists() {
            let promise: SignedReceipt = read_json(&promise_file)?;
            if promise.receipt.envelope_hash == hash && !receipt.fulfils(&promise) {
                return Err(ClientError::Check(
                    "the receipt does not say what the platform's promise said".into(),
                ));
            }
        }
        std::fs::write(
            bid.join(file),
            serde_json::to_vec_pretty(&receipt).expect("receipt"),
        )?;
        Ok(receipt)
    }

    /// Waits (polling, up to `timeout`) for the receipt that fulfils the
    /// promise of the bid in `bid` — of its withdrawal if `withdrawal` —
    /// verifies and saves it.
    pub async fn await_receipt(
        &self,
        bid: &Path,
        withdrawal: bool,
        timeout: Duration,
    ) -> ClientResult<SignedReceipt> {
        let signed: SignedEnvelope = read_json(&bid.join(ENVELOPE_FILE))?;
        let (_, hash) =
            envelope::parse_signed(&signed).map_err(|e| ClientError::Check(e.to_string()))?;
        let (field, file) = if withdrawal {
            ("withdrawal_receipt", WITHDRAWAL_RECEIPT_FILE)
        } else {
            ("receipt", RECEIPT_FILE)
        };
        let until = std::time::Instant::now() + timeout;
        loop {
            let status: Value = self.get(&format!("/api/bids/{hash}")).await?;
            if status.get(field).is_some_and(|r| !r.is_null()) {
                return self.keep_receipt(bid, &hash, &status[field], file);
            }
            if std::time::Instant::now() >= until {
                return Err(ClientError::Check(format!(
                    "no receipt yet: the platform promised to log this {} by its flush; keep {}, the platform's signed word that it accepted it, and ask again later",
                    if withdrawal { "withdrawal" } else { "bid" },
                    file.replace("receipt", "promise")
                )));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    pub async fn status(&self, envelope_hash: &str) -> ClientResult<Value> {
        self.get(&format!("/api/bids/{envelope_hash}")).await
    }

    /// Withdraws the bid whose latest complete revision is in `bid`; returns
    /// the verified promise (ADR 9), [`Client::await_receipt`] the receipt.
    pub async fn withdraw(
        &self,
        bid: &Path,
        signing: &SigningKey,
        now_ms: i64,
    ) -> ClientResult<SignedReceipt> {
        let signed: SignedEnvelope = read_json(&bid.join(ENVELOPE_FILE))?;
        let (env, hash) =
            envelope::parse_signed(&signed).map_err(|e| ClientError::Check(e.to_string()))?;
        let statement = SignedWithdrawal::sign(
            Withdrawal {
                version: envelope::VERSION.into(),
                section_id: env.section_id.clone(),
                bid_id: env.bid_id.clone(),
                envelope_hash: hash.clone(),
                bidder: env.bidder.clone(),
                created_at_ms: now_ms,
            },
            signing,
        );
        let v: Value = self
            .post(&format!("/api/bids/{hash}/withdraw"), &statement)
            .await?;
        if v.get("withdrawal_promise").is_none_or(|p| p.is_null()) {
            return Err(ClientError::Check(
                "no withdrawal promise in the answer".into(),
            ));
        }
        self.keep_promise(
            bid,
            &hash,
            &v["withdrawal_promise"],
            WITHDRAWAL_PROMISE_FILE,
        )
    }
}

/// Parses published parameters and checks them against a claimed hash.
pub fn check_params(
    json: &str,
    claimed_hash: Option<&str>,
) -> ClientResult<(SectionParams, String)> {
    let hash = sha256_hex(json.as_bytes());
    if let Some(h) = claimed_hash {
        if h != hash {
            return Err(ClientError::Check(format!(
                "the parameters hash to {hash}, not to the published {h}: refusing to seal"
            )));
        }
    }
    let value: Value =
        serde_json::from_str(json).map_err(|e| ClientError::Check(format!("parameters: {e}")))?;
    if crate::crypto::jcs::canonicalize(&value).map_err(|e| ClientError::Check(e.to_string()))?
        != json.as_bytes()
    {
        return Err(ClientError::Check(
            "the parameters are not in canonical form".into(),
        ));
    }
    let params: SectionParams = serde_json::from_value(value)
        .map_err(|e| ClientError::Check(format!("parameters: {e}")))?;
    Ok((params, hash))
}

pub const ENVELOPE_FILE: &str = "envelope.json";
pub const PARAMS_FILE: &str = "params.json";
pub const RECEIPT_FILE: &str = "receipt.json";
pub const WITHDRAWAL_RECEIPT_FILE: &str = "withdrawal-receipt.json";
/// The promises that come before the receipts (ADR 9).
pub const PROMISE_FILE: &str = "promise.json";
pub const WITHDRAWAL_PROMISE_FILE: &str = "withdrawal-promise.json";

pub fn read_json<T: DeserializeOwned>(path: &Path) -> ClientResult<T> {
    let bytes = std::fs::read(path)?;
    serde_json::from_slice(&bytes)
        .map_err(|e| ClientError::Check(format!("{}: {e}", path.display())))
}

/// What a bidder seals into a bid directory.
pub struct SealRequest<'a> {
    /// The published parameters, byte for byte.
    pub params_json: &'a str,
    /// The hash they were published under (checked).
    pub params_hash: &'a str,
    pub bidder: &'a str,
    pub signing: &'a SigningKey,
    pub encryption_public: [u8; 32],
    pub fields: envelope::SummaryFields,
    pub documents: &'a Path,
    /// A bid directory this revision supersedes.
    pub supersedes: Option<&'a Path>,
    pub now_ms: i64,
}

/// Seals a bid into `out` (which must not exist): `envelope.json`,
/// `summary.part`, `documents.part` and the `params.json` it was sealed
/// against. Streams the documents; memory stays bounded. Blocking.
pub fn seal_to_dir(
    req: SealRequest<'_>,
    out: &Path,
    progress: &mut dyn FnMut(u64),
) -> ClientResult<(String, envelope::Envelope)> {
    let (params, hash) = check_params(req.params_json, Some(req.params_hash))?;
    let section = crate::service::bids::section_keys(&params, &hash)
        .map_err(|e| ClientError::Check(e.message))?;
    let (bid_id, revision, supersedes) = match req.supersedes {
        None => (None, 1, None),
        Some(prev) => {
            let signed: SignedEnvelope = read_json(&prev.join(ENVELOPE_FILE))?;
            let (env, h) =
                envelope::parse_signed(&signed).map_err(|e| ClientError::Check(e.to_string()))?;
            if env.section_id != params.section_id {
                return Err(ClientError::Check(
                    "the earlier bid is for another section".into(),
                ));
            }
            (Some(env.bid_id), env.revision + 1, Some(h))
        }
    };
    std::fs::create_dir(out)?;
    let docs = std::fs::File::open(req.documents)?;
    let len = docs.metadata()?.len();
    let docs_out = std::io::BufWriter::with_capacity(
        1 << 20,
        std::fs::File::create(out.join("documents.part"))?,
    );
    let sealed = envelope::seal(
        &section,
        &envelope::BidderIdentity {
            org_id: req.bidder,
            signing: req.signing,
            encryption_public: req.encryption_public,
        },
        envelope::BidContent {
            bid_id,
            revision,
            supersedes,
            fields: req.fields,
            documents: docs,
            documents_len: len,
            now_ms: req.now_ms,
        },
        docs_out,
        progress,
    )
    .map_err(|e| ClientError::Check(e.to_string()))?;
    std::fs::write(out.join("summary.part"), &sealed.summary_ciphertext)?;
    std::fs::write(out.join(PARAMS_FILE), req.params_json)?;
    std::fs::write(
        out.join(ENVELOPE_FILE),
        serde_json::to_vec_pretty(&sealed.signed).expect("envelope"),
    )?;
    Ok((sealed.hash, sealed.envelope))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// A server that answers the first request on every connection and
    /// closes the connection when a second one arrives on it, unanswered —
    /// as a keep-alive connection the server dropped while it sat idle
    /// looks to the client that reuses it. Counts the requests it saw.
    async fn closing_server() -> (String, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(AtomicUsize::new(0));
        let count = seen.clone();
        tokio::spawn(async move {
            loop {
                let (mut sock, _) = listener.accept().await.unwrap();
                let count = count.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    let mut answered = false;
                    loop {
                        let n = sock.read(&mut buf).await.unwrap_or(0);
                        if n == 0 {
                            return;
                        }
                        count.fetch_add(1, Ordering::SeqCst);
                        if answered {
                            // Closed under the reused request, once it has
                            // been written in full (the server may have
                            // acted on it).
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            let _ = tokio::time::timeout(
                                Duration::from_millis(10),
                                sock.read(&mut buf),
                            )
                            .await;
                            return;
                        }
                        let body = br#"{"ok":true}"#;
                        let head = format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                            body.len()
                        );
                        sock.write_all(head.as_bytes()).await.unwrap();
                        sock.write_all(body).await.unwrap();
                        answered = true;
                    }
                });
            }
        });
        (base, seen)
    }

    #[actix_web::test]
    async fn a_request_on_a_connection_the_server_closed_is_sent_again_when_idempotent() {
        let (base, seen) = closing_server().await;
        let client = Client::new(&base);
        let v: Value = client.get("/a").await.unwrap();
        assert_eq!(v["ok"], true);
        // Reuses the pooled connection, finds it closed, retries on a new one.
        let v: Value = client.get("/b").await.unwrap();
        assert_eq!(v["ok"], true);
        let v: Value = client.post_idempotent("/c", &json!({})).await.unwrap();
        assert_eq!(v["ok"], true);
        assert_eq!(seen.load(Ordering::SeqCst), 5, "two retried requests");
    }

    #[actix_web::test]
    async fn a_request_that_is_not_idempotent_is_never_sent_twice() {
        let (base, seen) = closing_server().await;
        let client = Client::new(&base);
        let _: Value = client.get("/a").await.unwrap();
        // The server may have acted on it: the client says so, and does not
        // send it again.
        let e = client.post::<Value>("/b", &json!({})).await.unwrap_err();
        assert!(matches!(e, ClientError::Transport(_)), "{e}");
        assert_eq!(seen.load(Ordering::SeqCst), 2);
    }
}
