//! Sections brought to a named phase of their opening through the real API
//! — `Fixture::new().mode("bidders").at(Phase::Decrypting)` — so that a
//! test starts where its behaviour begins, and a failure names the step
//! that broke rather than a line in a story of hundreds.
//!
//! Each phase is reached the way the parties reach it: bids sealed on the
//! bidders' side and submitted, the clock moved past the deadline, the
//! custodians' keys released, the record confirmed, objected to, answered,
//! closed and countersigned.

use std::path::PathBuf;
use std::time::Duration;

use ed25519_dalek::SigningKey;
use kaibiao::client::opening::{own_summary, Watcher};
use kaibiao::client::Client;
use kaibiao::crypto::{sign, x25519};
use kaibiao::domain::time::Timestamp;
use serde_json::{json, Value};

use crate::helpers::{spawn, TestApp, TestStore};
use crate::world::{register_ed25519, seal, BidderKeys, Person, World};

/// How long a test waits for an event in the room.
pub const WAIT: Duration = Duration::from_secs(20);

/// Where a section's opening stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// Published, the bids submitted; the deadline is still ahead.
    Bidding,
    /// Past the deadline: sealed, and the decryption window open.
    Decrypting,
    /// Custodians' mode only: the threshold of keys released, every bid
    /// opened and announced (唱标); bidders may confirm or object.
    Confirming,
    /// The record confirmed by bidder 0, objected to by bidder 1 (answered,
    /// then confirmed), left unanswered by bidder 2; closed by the host and
    /// countersigned by the supervisor: the evaluation may begin.
    Evaluating,
}

/// What a fixture is made of; [`Fixture::at`] builds it.
pub struct Fixture {
    store: TestStore,
    mode: &'static str,
    min_bidders: i64,
    prices: Vec<Option<&'static str>>,
    docs_len: Option<usize>,
    tweak: Box<dyn FnOnce(&mut kaibiao::config::Config)>,
}

impl Default for Fixture {
    fn default() -> Self {
        Fixture::new()
    }
}

impl Fixture {
    /// Custodians' mode, 2 bids needed, three bidders bidding, on SQLite
    /// (or the suite's database).
    pub fn new() -> Self {
        Fixture::on(TestStore::new())
    }

    pub fn on(store: TestStore) -> Self {
        Fixture {
            store,
            mode: "custodians",
            min_bidders: 2,
            prices: vec![Some("5000000.00"), Some("5100000.00"), Some("5200000.00")],
            docs_len: None,
            tweak: Box::new(|_| {}),
        }
    }

    /// `custodians`, `bidders` or `bidders_with_escrow`.
    pub fn mode(mut self, mode: &'static str) -> Self {
        self.mode = mode;
        self
    }

    pub fn min_bidders(mut self, n: i64) -> Self {
        self.min_bidders = n;
        self
    }

    /// The price bidder `i` bids (`None`: it does not bid).
    pub fn prices(mut self, prices: &[Option<&'static str>]) -> Self {
        self.prices = prices.to_vec();
        self
    }

    /// Bytes of documents in each bid (default: a few kilobytes).
    pub fn documents(mut self, len: usize) -> Self {
        self.docs_len = Some(len);
        self
    }

    pub fn config(mut self, f: impl FnOnce(&mut kaibiao::config::Config) + 'static) -> Self {
        self.tweak = Box::new(f);
        self
    }

    /// The section, brought to `phase`.
    pub async fn at(self, phase: Phase) -> Fx {
        let fx = self.bidding().await;
        if phase >= Phase::Decrypting {
            fx.pass_deadline().await;
            fx.wait_phase("decrypting").await;
        }
        if phase >= Phase::Confirming {
            assert_eq!(fx.mode, "custodians", "Phase::Confirming needs custodians");
            let threshold = 3;
            for i in 0..threshold {
                fx.release(i).await.unwrap();
            }
            fx.wait_phase("confirming").await;
        }
        if phase >= Phase::Evaluating {
            fx.confirm_object_and_close().await;
            fx.client(&fx.w.supervisor)
                .countersign(&fx.section, &fx.supervisor_key)
                .await
                .unwrap();
            fx.wait_phase("evaluating").await;
        }
        fx
    }

    async fn bidding(self) -> Fx {
        let app = spawn(&self.store).config(self.tweak).start().await;
        let w = World::build(&app).await;
        let project = w.project(&app, "construction", true).await;
        let mut body = w.draft_body(&app, 20);
        body["decryption_mode"] = json!(self.mode);
        body["min_bidders"] = json!(self.min_bidders);
        let (section, custodian_keys) = w.publish_keyed(&app, &project, body).await;
        let root = tempfile::tempdir().unwrap();
        let mut keys = Vec::new();
        let mut dirs = Vec::new();
        for (i, price) in self.prices.iter().enumerate() {
            let k = w.bidder_keys(&app, i).await;
            dirs.push(match price {
                Some(p) => {
                    let docs = documents(i, self.docs_len);
                    let (dir, _) = seal(
                        &app,
                        root.path(),
                        &w.bidders[i],
                        &k,
                        &section,
                        p,
                        &docs,
                        None,
                    )
                    .await;
                    w.client(&app, &w.bidders[i])
                        .submit(&dir, &mut |_, _| {})
                        .await
                        .unwrap();
                    Some(dir)
                }
                None => None,
            });
            keys.push(k);
        }
        let supervisor_key = sign::generate();
        register_ed25519(&app, &w.supervisor, "supervisor_identity", &supervisor_key).await;
        Fx {
            app,
            w,
            section,
            mode: self.mode,
            custodian_keys,
            keys,
            dirs,
            supervisor_key,
            _root: root,
            store: self.store,
        }
    }
}

/// Bidder `i`'s documents: `len` bytes, or a few kilobytes.
fn documents(i: usize, len: Option<usize>) -> Vec<u8> {
    let mut docs = format!("bid documents of bidder {i}\n").repeat(1000);
    if let Some(n) = len {
        docs = docs.repeat(n / docs.len() + 1);
        docs.truncate(n);
    }
    docs.into_bytes()
}

/// A section and its parties, at some phase of the opening.
pub struct Fx {
    pub app: TestApp,
    pub w: World,
    pub section: String,
    pub mode: &'static str,
    pub custodian_keys: Vec<x25519::SecretKey>,
    pub keys: Vec<BidderKeys>,
    /// Sealed bid directories, by bidder index (`None`: did not bid).
    pub dirs: Vec<Option<PathBuf>>,
    pub supervisor_key: SigningKey,
    /// Holds the sealed bid directories for as long as the fixture lives.
    _root: tempfile::TempDir,
    pub store: TestStore,
}

impl Fx {
    pub fn client(&self, who: &Person) -> Client {
        self.w.client(&self.app, who)
    }

    pub fn bidder(&self, i: usize) -> Client {
        self.client(&self.w.bidders[i])
    }

    pub fn host(&self) -> Client {
        self.client(&self.w.host)
    }

    pub fn org(&self, i: usize) -> String {
        self.w.bidders[i].org_id.clone().unwrap()
    }

    pub async fn watch(&self, token: Option<&str>, after: i64) -> Watcher {
        Watcher::connect(&self.app.base, &self.section, token, after)
            .await
            .unwrap()
    }

    pub async fn deadline(&self) -> Timestamp {
        Timestamp::parse_rfc3339(
            self.app
                .get(&format!("/api/public/sections/{}", self.section), None)
                .await
                .expect(200)["deadline"]
                .as_str()
                .unwrap(),
        )
        .unwrap()
    }

    /// The room's state (the staff view with a host's token).
    pub async fn state(&self, token: Option<&str>) -> Value {
        self.app
            .get(&format!("/api/sections/{}/opening", self.section), token)
            .await
            .expect(200)
    }

    pub async fn phase(&self) -> String {
        self.state(None).await["state"]["phase"]
            .as_str()
            .unwrap()
            .to_string()
    }

    pub async fn wait_phase(&self, phase: &str) {
        let mut seen = String::new();
        for _ in 0..800 {
            seen = self.phase().await;
            if seen == phase {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the opening never reached {phase}; it is {seen}");
    }

    /// The decryption window's end, as the room says.
    pub async fn window_ends(&self) -> i64 {
        self.state(None).await["state"]["window"]["ends_at_ms"]
            .as_i64()
            .unwrap()
    }

    /// Moves the clock 1 ms past the deadline.
    pub async fn pass_deadline(&self) {
        let d = self.deadline().await;
        let now = self.app.now();
        self.app
            .advance(d.since(now) + chrono::Duration::milliseconds(1));
    }

    /// Custodian `i` releases its section key.
    pub async fn release(&self, i: usize) -> Result<Value, kaibiao::client::ClientError> {
        self.client(&self.w.custodians[i].person)
            .release_key(
                &self.section,
                &self.w.custodians[i].identity,
                &self.custodian_keys[i],
            )
            .await
    }

    /// Bidder `i` decrypts its own bid (bidders' modes).
    pub async fn decrypt_own(&self, i: usize) -> Result<Value, kaibiao::client::ClientError> {
        self.bidder(i)
            .decrypt_own(self.dirs[i].as_ref().unwrap(), &self.keys[i].encryption)
            .await
    }

    /// Bidder `i`'s own line of the record, from its sealed bid.
    pub fn own_line(&self, i: usize) -> kaibiao::crypto::envelope::SummaryFields {
        own_summary(self.dirs[i].as_ref().unwrap(), &self.keys[i].encryption).unwrap()
    }

    /// Bidder `i` confirms the record, checking its own line when `check`.
    pub async fn confirm(
        &self,
        i: usize,
        check: bool,
    ) -> Result<Value, kaibiao::client::ClientError> {
        let own = check.then(|| self.own_line(i));
        self.bidder(i)
            .confirm(
                &self.section,
                &self.org(i),
                &self.keys[i].signing,
                own.as_ref(),
            )
            .await
    }

    /// Bidder 0 confirms; bidder 1 objects, is answered, and confirms;
    /// bidder 2 says nothing; the host closes.
    pub async fn confirm_object_and_close(&self) -> Value {
        let s = &self.section;
        self.confirm(0, true).await.unwrap();
        let obj = self
            .bidder(1)
            .object(s, "我公司报价应为 5100000.00 元，请核实。")
            .await
            .unwrap();
        self.host()
            .answer(
                s,
                obj["id"].as_str().unwrap(),
                "经核对解密结果，报价与记录一致。",
            )
            .await
            .unwrap();
        self.confirm(1, true).await.unwrap();
        self.host().close_opening(s).await.unwrap()
    }

    /// The section's transcript, checked; returns it and what the check found.
    pub async fn verified(
        &self,
    ) -> (
        kaibiao::transcript::Transcript,
        kaibiao::transcript::Summary,
    ) {
        let t: kaibiao::transcript::Transcript = serde_json::from_value(
            self.app
                .get(
                    &format!("/api/public/sections/{}/transcript", self.section),
                    None,
                )
                .await
                .expect(200),
        )
        .unwrap();
        let s = kaibiao::transcript::verify(&t).unwrap_or_else(|e| panic!("INVALID: {e}"));
        (t, s)
    }
}

/// The event kind of a room frame.
pub fn kind(f: &Value) -> &str {
    f["kind"].as_str().unwrap_or_default()
}

/// The kinds of the event frames among `frames`.
pub fn event_kinds(frames: &[Value]) -> Vec<String> {
    frames
        .iter()
        .filter(|f| f["type"] == "event")
        .map(|f| kind(f).to_string())
        .collect()
}

/// Frames until (and including) the event of kind `k`.
pub async fn events_until(w: &mut Watcher, k: &str) -> Vec<Value> {
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let f = w
            .next_within(left)
            .await
            .unwrap_or_else(|e| panic!("waiting for {k}: {e}; saw {seen:#?}"))
            .unwrap_or_else(|| panic!("the room closed before {k}"));
        let done = f["type"] == "event" && kind(&f) == k;
        seen.push(f);
        if done {
            return seen;
        }
    }
}
