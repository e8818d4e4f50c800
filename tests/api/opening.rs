//! The opening (开标) end to end over real HTTP and WebSocket connections:
//! each decryption mode, attribution of failures to the bidder or the
//! platform, fewer bids than `min_bidders`, objections, the signed record —
//! and every bad input refused without changing anything.

use std::path::PathBuf;
use std::time::Duration;

use ed25519_dalek::SigningKey;
use kaibiao::client::opening::{own_summary, Watcher};
use kaibiao::client::Client;
use kaibiao::crypto::opening::{
    Closing, IncidentRuling, KeyRelease, SignedKeyRelease, INCIDENT_FORMAT, KEY_RELEASE_FORMAT,
};
use kaibiao::crypto::{sign, x25519};
use kaibiao::domain::time::Timestamp;
use kaibiao::transcript::Transcript;
use serde_json::{json, Value};

use crate::helpers::{rows_of, spawn, TestApp, TestStore};
use crate::world::{register_ed25519, seal, BidderKeys, World};

pub struct Fx {
    pub app: TestApp,
    pub w: World,
    pub section: String,
    pub custodian_keys: Vec<x25519::SecretKey>,
    pub keys: Vec<BidderKeys>,
    /// Sealed bid directories, by bidder index (`None`: did not bid).
    pub dirs: Vec<Option<PathBuf>>,
    pub supervisor_key: SigningKey,
    /// Holds the sealed bid directories for as long as the fixture lives.
    _root: tempfile::TempDir,
    pub store: TestStore,
}

const WAIT: Duration = Duration::from_secs(20);

/// A published section in `mode` with `min_bidders`, and a bid at `prices[i]`
/// from bidder `i` (`None`: that bidder does not bid).
pub async fn fixture(
    store: TestStore,
    mode: &str,
    min_bidders: i64,
    prices: &[Option<&str>],
    tweak: impl FnOnce(&mut kaibiao::config::Config) + 'static,
) -> Fx {
    fixture_with(store, mode, min_bidders, prices, None, tweak).await
}

/// [`fixture`], with `docs_len` bytes of documents in each bid (default: a
/// few kilobytes).
pub async fn fixture_with(
    store: TestStore,
    mode: &str,
    min_bidders: i64,
    prices: &[Option<&str>],
    docs_len: Option<usize>,
    tweak: impl FnOnce(&mut kaibiao::config::Config) + 'static,
) -> Fx {
    let app = spawn(&store).config(tweak).start().await;
    let w = World::build(&app).await;
    let project = w.project(&app, "construction", true).await;
    let mut body = w.draft_body(&app, 20);
    body["decryption_mode"] = json!(mode);
    body["min_bidders"] = json!(min_bidders);
    let section = app
        .post(
            &format!("/api/projects/{project}/sections"),
            Some(&w.host.token),
            body,
        )
        .await
        .expect(201)["id"]
        .as_str()
        .unwrap()
        .to_string();
    let custodian_keys = w.register_section_keys(&app, &section).await;
    w.upload(&app, &section, "招标文件.pdf", b"%PDF tender")
        .await;
    app.post(
        &format!("/api/sections/{section}/publish"),
        Some(&w.host.token),
        json!({}),
    )
    .await
    .expect(200);
    let root = tempfile::tempdir().unwrap();
    let mut keys = Vec::new();
    let mut dirs = Vec::new();
    for (i, price) in prices.iter().enumerate() {
        let k = w.bidder_keys(&app, i).await;
        dirs.push(match price {
            Some(p) => {
                let mut docs = format!("bid documents of bidder {i}\n").repeat(1000);
                if let Some(n) = docs_len {
                    docs = docs.repeat(n / docs.len() + 1);
                    docs.truncate(n);
                }
                let (dir, _) = seal(
                    &app,
                    root.path(),
                    &w.bidders[i],
                    &k,
                    &section,
                    p,
                    docs.as_bytes(),
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
        custodian_keys,
        keys,
        dirs,
        supervisor_key,
        _root: root,
        store,
    }
}

impl Fx {
    pub fn client(&self, who: &crate::world::Person) -> Client {
        self.w.client(&self.app, who)
    }

    pub fn bidder(&self, i: usize) -> Client {
        self.client(&self.w.bidders[i])
    }

    pub fn host(&self) -> Client {
        self.client(&self.w.host)
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

    pub async fn phase(&self) -> String {
        self.app
            .get(&format!("/api/sections/{}/opening", self.section), None)
            .await
            .expect(200)["state"]["phase"]
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

    /// Moves the clock past the deadline and waits for the opening to begin.
    pub async fn pass_deadline(&self) {
        let d = self.deadline().await;
        let now = self.app.now();
        self.app
            .advance(d.since(now) + chrono::Duration::milliseconds(1));
    }

    pub async fn release(&self, i: usize) -> Result<Value, kaibiao::client::ClientError> {
        self.client(&self.w.custodians[i].person)
            .release_key(
                &self.section,
                &self.w.custodians[i].identity,
                &self.custodian_keys[i],
            )
            .await
    }

    pub async fn state(&self, token: Option<&str>) -> Value {
        self.app
            .get(&format!("/api/sections/{}/opening", self.section), token)
            .await
            .expect(200)
    }

    pub fn org(&self, i: usize) -> String {
        self.w.bidders[i].org_id.clone().unwrap()
    }
}

fn kind(f: &Value) -> &str {
    f["kind"].as_str().unwrap_or_default()
}

/// Frames until (and including) the event of `kind`.
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

/// The section's transcript, checked; returns it and what the check found.
async fn verified(fx: &Fx) -> (Transcript, kaibiao::transcript::opening::OpeningSummary) {
    let t: Transcript = serde_json::from_value(
        fx.app
            .get(
                &format!("/api/public/sections/{}/transcript", fx.section),
                None,
            )
            .await
            .expect(200),
    )
    .unwrap();
    let s = kaibiao::transcript::verify(&t).unwrap_or_else(|e| panic!("INVALID: {e}"));
    (t, s.opening.expect("the opening is in the transcript"))
}

/// `t` altered by `change` no longer verifies, and the reason names `why`.
fn rejects(t: &Transcript, why: &str, change: impl FnOnce(&mut Transcript)) {
    let mut bad = t.clone();
    change(&mut bad);
    let e = kaibiao::transcript::verify(&bad).expect_err(why);
    assert!(e.contains(why), "expected {why:?}, got {e:?}");
}

/// The log entry of the first leaf of type `ty`.
fn entry<'a>(t: &'a mut Transcript, ty: &str) -> &'a mut Value {
    &mut t
        .log
        .entries
        .iter_mut()
        .find(|e| e.leaf["type"] == ty)
        .unwrap_or_else(|| panic!("no {ty} in the log"))
        .leaf
}

fn event_kinds(frames: &[Value]) -> Vec<String> {
    frames
        .iter()
        .filter(|f| f["type"] == "event")
        .map(|f| kind(f).to_string())
        .collect()
}

#[actix_web::test]
async fn custodians_open_the_bids_and_the_record_is_confirmed_objected_answered_closed_and_countersigned(
) {
    let fx = fixture(
        TestStore::new(),
        "custodians",
        3,
        &[Some("9876543.21"), Some("10000000.00"), Some("8800000.50")],
        |_| {},
    )
    .await;
    let s = fx.section.clone();
    let mut public = fx.watch(None, 0).await;
    let mut staff = fx.watch(Some(&fx.w.host.token), 0).await;
    let mut bidder0 = fx.watch(Some(&fx.w.bidders[0].token), 0).await;
    assert_eq!(public.hello["view"], "public");
    assert_eq!(staff.hello["view"], "staff");
    assert_eq!(bidder0.hello["me"]["role"], "bidder");
    let snap = public.next().await.unwrap().unwrap();
    assert_eq!(snap["type"], "snapshot");
    assert_eq!(snap["state"]["phase"], "published");

    // Before the deadline a custodian cannot release.
    let early = fx.release(0).await.unwrap_err();
    assert_eq!(early.code(), Some("invalid_transition"), "{early}");

    fx.pass_deadline().await;
    let frames = events_until(&mut public, "opening.started").await;
    let kinds = event_kinds(&frames);
    assert!(
        kinds.contains(&"section.sealed".to_string())
            && kinds.contains(&"section.manifest".to_string()),
        "{kinds:?}"
    );
    let started = frames.last().unwrap();
    assert_eq!(started["data"]["bids"].as_array().unwrap().len(), 3);

    // Three of five custodians release; the third triggers the decryption.
    for i in 0..3 {
        let v = fx.release(i).await.unwrap();
        assert_eq!(v["released"], i + 1);
    }
    let frames = events_until(&mut public, "opening.confirming").await;
    let kinds = event_kinds(&frames);
    assert_eq!(
        kinds.iter().filter(|k| *k == "opening.bid_settled").count(),
        3,
        "{kinds:?}"
    );
    // No price reaches anyone before the announcement, and then all at once.
    let announced_at = frames
        .iter()
        .position(|f| kind(f) == "opening.announced")
        .unwrap();
    for f in &frames[..announced_at] {
        let t = f.to_string();
        assert!(
            !t.contains("9876543.21") && !t.contains("8800000.50"),
            "{t}"
        );
    }
    let record = &frames[announced_at]["data"]["record"];
    let prices: Vec<&str> = record["bids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["summary"]["price"].as_str().unwrap())
        .collect();
    for p in ["9876543.21", "10000000.00", "8800000.50"] {
        assert!(prices.contains(&p), "{prices:?}");
    }
    // Staff frames name who acted; public frames never carry a user.
    let public_text: String = frames.iter().map(|f| f.to_string()).collect();
    assert!(!public_text.contains("\"actor\"") && !public_text.contains("\"staff\""));
    let staff_frames = events_until(&mut staff, "opening.confirming").await;
    let released: Vec<&Value> = staff_frames
        .iter()
        .filter(|f| kind(f) == "opening.key_released")
        .collect();
    assert_eq!(released[0]["actor"], fx.w.custodians[0].person.id.as_str());
    assert_eq!(
        released[0]["data"]["staff"]["custodian"],
        fx.w.custodians[0].person.id.as_str()
    );

    // Confirmations: a stale hash is refused; a proper one is recorded.
    let org0 = fx.org(0);
    let stale = fx
        .bidder(0)
        .post::<Value>(
            &format!("/api/sections/{s}/opening/confirmations"),
            &json!({"record_hash": "00".repeat(32), "signature": "00".repeat(64)}),
        )
        .await
        .unwrap_err();
    assert_eq!(stale.code(), Some("conflict"), "{stale}");
    let own = own_summary(fx.dirs[0].as_ref().unwrap(), &fx.keys[0].encryption).unwrap();
    fx.bidder(0)
        .confirm(&s, &org0, &fx.keys[0].signing, Some(&own))
        .await
        .unwrap();
    // Someone else's bid as ours: the client refuses to confirm.
    let mine1 = own_summary(fx.dirs[1].as_ref().unwrap(), &fx.keys[1].encryption).unwrap();
    let refused = fx
        .bidder(0)
        .confirm(&s, &org0, &fx.keys[0].signing, Some(&mine1))
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("differently"), "{refused}");
    // A second confirmation is refused.
    let again = fx
        .bidder(0)
        .confirm(&s, &org0, &fx.keys[0].signing, None)
        .await
        .unwrap_err();
    assert_eq!(again.code(), Some("conflict"));

    // Bidder 1 objects; it cannot confirm until the host answers.
    let obj = fx
        .bidder(1)
        .object(&s, "我公司报价应为 10000000.00 元，请核实。")
        .await
        .unwrap();
    let obj_id = obj["id"].as_str().unwrap().to_string();
    let early_close = fx.host().close_opening(&s).await.unwrap_err();
    assert_eq!(early_close.code(), Some("invalid_transition"));
    let waiting = fx
        .bidder(1)
        .confirm(&s, &fx.org(1), &fx.keys[1].signing, None)
        .await
        .unwrap_err();
    assert_eq!(waiting.code(), Some("invalid_transition"));
    // A bidder cannot answer; the host answers once.
    let not_host = fx
        .bidder(0)
        .post::<Value>(
            &format!("/api/sections/{s}/opening/objections/{obj_id}/answer"),
            &json!({"text": "x"}),
        )
        .await
        .unwrap_err();
    assert_eq!(not_host.code(), Some("forbidden"));
    fx.host()
        .answer(
            &s,
            &obj_id,
            "经核对解密结果，报价为 10000000.00 元，与记录一致。",
        )
        .await
        .unwrap();
    let twice = fx.host().answer(&s, &obj_id, "again").await.unwrap_err();
    assert_eq!(twice.code(), Some("conflict"));
    fx.bidder(1)
        .confirm(&s, &fx.org(1), &fx.keys[1].signing, Some(&mine1))
        .await
        .unwrap();

    // The host closes; bidder 2 never answered (taken as accepting).
    let closed = fx.host().close_opening(&s).await.unwrap();
    let closing: Closing = serde_json::from_value(closed["closing"].clone()).unwrap();
    assert_eq!(closing.no_response, vec![fx.org(2)]);
    assert_eq!(closing.confirmations.len(), 2);
    assert_eq!(closing.objections.len(), 1);
    let late = fx
        .bidder(2)
        .confirm(&s, &fx.org(2), &fx.keys[2].signing, None)
        .await
        .unwrap_err();
    assert_eq!(late.code(), Some("invalid_transition"));

    // The countersignature must be the supervisor's registered key.
    let wrong = fx
        .client(&fx.w.supervisor)
        .countersign(&s, &sign::generate())
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), Some("proof_invalid"));
    let other = fx
        .client(&fx.w.supervisor_b)
        .countersign(&s, &fx.supervisor_key)
        .await
        .unwrap_err();
    assert_eq!(other.code(), Some("forbidden"));
    fx.client(&fx.w.supervisor)
        .countersign(&s, &fx.supervisor_key)
        .await
        .unwrap();
    let frames = events_until(&mut bidder0, "opening.countersigned").await;
    assert!(event_kinds(&frames).contains(&"opening.objection".to_string()));
    fx.wait_phase("evaluating").await;

    // The record: JSON with every signature, and a printable page.
    let r = fx.bidder(0).opening_record(&s).await.unwrap();
    let platform = fx.bidder(0).platform_key().await.unwrap();
    let closing: Closing = serde_json::from_value(r["closing"].clone()).unwrap();
    assert!(closing.verify_platform(&platform, r["platform_signature"].as_str().unwrap()));
    assert!(closing.verify_countersignature(
        r["supervisor_key"].as_str().unwrap(),
        r["countersignature"].as_str().unwrap()
    ));
    let page = fx
        .app
        .get(
            &format!("/api/public/sections/{s}/opening-record.html"),
            None,
        )
        .await;
    assert_eq!(page.status, 200);
    let html = page.text();
    assert!(
        html.contains("开标记录")
            && html.contains("9876543.21")
            && html.contains("投标企业0有限公司")
    );

    // The transcript proves all of it offline — and nothing else.
    let (t, o) = verified(&fx).await;
    assert_eq!(
        (o.outcome.as_str(), o.key_releases, o.decrypted, o.revoked),
        ("announced", 3, 3, 0)
    );
    assert!(o.closed && o.countersigned && o.objections == 1, "{o:?}");
    assert_eq!(o.record_hash, r["record_hash"].as_str().unwrap());
    rejects(&t, "not in the signed log", |t| {
        let leaf = entry(t, "opening.announced");
        leaf["record"]["bids"][0]["summary"]["price"] = json!("1.00");
    });
    rejects(&t, "the summary ciphertext is not the one", |t| {
        let o = t.opening.as_mut().unwrap();
        let ct = &mut o.bids[0].summary_ciphertext;
        let flipped = if ct.starts_with('0') { "1" } else { "0" };
        ct.replace_range(0..1, flipped);
    });
    rejects(&t, "not the one the released keys rebuild", |t| {
        t.opening.as_mut().unwrap().bids[1].bmk = "22".repeat(32);
    });
    rejects(&t, "key release of custodian", |t| {
        let r = &mut t.opening.as_mut().unwrap().key_releases[0];
        r.release.released_at_ms += 1;
    });
    rejects(
        &t,
        "the log records 3 key releases, the transcript carries 2",
        |t| {
            t.opening.as_mut().unwrap().key_releases.pop();
        },
    );
    rejects(&t, "not in the signed log", |t| {
        let leaf = entry(t, "opening.confirmed");
        leaf["signature"] = json!("00".repeat(64));
    });
    rejects(&t, "not in the signed log", |t| {
        // The order of events: the first settlement and the announcement
        // trade places in the log.
        let i = t
            .log
            .entries
            .iter()
            .position(|e| e.leaf["type"] == "opening.bid_settled")
            .unwrap();
        let j = t
            .log
            .entries
            .iter()
            .position(|e| e.leaf["type"] == "opening.announced")
            .unwrap();
        let (a, b) = (t.log.entries[i].leaf.clone(), t.log.entries[j].leaf.clone());
        t.log.entries[i].leaf = b;
        t.log.entries[j].leaf = a;
    });
    rejects(&t, "decrypted, but its key is not published", |t| {
        t.opening.as_mut().unwrap().bids.remove(2);
    });
    rejects(&t, "which the transcript lacks", |t| {
        // A bid dropped from the transcript.
        t.bids.remove(0);
    });
    rejects(&t, "the transcript omits it", |t| {
        t.opening = None;
    });
    rejects(&t, "the closing statement is not the one in the log", |t| {
        let c = t.opening.as_mut().unwrap().closing.as_mut().unwrap();
        c.no_response.push("org_someone".into());
    });
    fx.app.stop().await;
}

#[actix_web::test]
async fn in_bidders_mode_each_bidder_decrypts_its_own_bid_and_one_that_does_not_is_revoked() {
    let fx = fixture(
        TestStore::new(),
        "bidders",
        2,
        &[Some("5000000.00"), Some("5100000.00"), Some("5200000.00")],
        |_| {},
    )
    .await;
    let s = fx.section.clone();
    let mut public = fx.watch(None, 0).await;
    fx.pass_deadline().await;
    events_until(&mut public, "opening.started").await;

    // No custodian key is needed (or accepted) in this mode.
    let refused = fx.release(0).await.unwrap_err();
    assert_eq!(refused.code(), Some("invalid_transition"), "{refused}");

    // Someone else's bid, a wrong key, a key that is not hex: refused, nothing changes.
    let hash1 = kaibiao::crypto::envelope::parse_signed(
        &serde_json::from_slice(
            &std::fs::read(fx.dirs[1].as_ref().unwrap().join("envelope.json")).unwrap(),
        )
        .unwrap(),
    )
    .unwrap()
    .1;
    let path = format!("/api/sections/{s}/opening/decryptions");
    let other = fx
        .bidder(0)
        .post::<Value>(
            &path,
            &json!({"envelope_hash": hash1, "bmk": "11".repeat(32)}),
        )
        .await
        .unwrap_err();
    assert_eq!(other.code(), Some("forbidden"), "{other}");
    let wrong = fx
        .bidder(1)
        .post::<Value>(
            &path,
            &json!({"envelope_hash": hash1, "bmk": "11".repeat(32)}),
        )
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), Some("key_rejected"), "{wrong}");
    let malformed = fx
        .bidder(1)
        .post::<Value>(&path, &json!({"envelope_hash": hash1, "bmk": "xyz"}))
        .await
        .unwrap_err();
    assert_eq!(malformed.code(), Some("validation_failed"));
    let st = fx.state(None).await;
    assert!(st["state"]["bids"]
        .as_array()
        .unwrap()
        .iter()
        .all(|b| b["status"] == "pending"));

    // Bidder 0 decrypts at once, bidder 1 a millisecond before the window
    // closes; bidder 2 comes exactly at its end, with the right key: late.
    let ends = fx.state(None).await["state"]["window"]["ends_at_ms"]
        .as_i64()
        .unwrap();
    let decrypt = |i: usize| {
        let (c, dir, key) = (
            fx.bidder(i),
            fx.dirs[i].clone().unwrap(),
            fx.keys[i].encryption.clone(),
        );
        async move { c.decrypt_own(&dir, &key).await }
    };
    let v = decrypt(0).await.unwrap();
    assert_eq!(v["status"], "decrypted", "{v}");
    fx.app.fixed_clock().set(Timestamp::from_millis(ends - 1));
    let v = decrypt(1).await.unwrap();
    assert_eq!(v["status"], "decrypted", "{v}");
    let again = fx
        .bidder(0)
        .decrypt_own(fx.dirs[0].as_ref().unwrap(), &fx.keys[0].encryption)
        .await
        .unwrap_err();
    assert_eq!(again.code(), Some("conflict"));
    assert_eq!(
        fx.phase().await,
        "decrypting",
        "no price before the window closes"
    );

    fx.app.fixed_clock().set(Timestamp::from_millis(ends));
    let late = decrypt(2).await.unwrap_err();
    assert_eq!(
        late.code(),
        Some("invalid_transition"),
        "late by 0 ms: {late}"
    );
    let frames = events_until(&mut public, "opening.announced").await;
    let settled: Vec<&Value> = frames
        .iter()
        .filter(|f| kind(f) == "opening.bid_settled")
        .collect();
    let last = settled.last().unwrap();
    assert_eq!(last["data"]["bidder"], fx.org(2).as_str());
    assert_eq!(last["data"]["status"], "revoked");
    assert_eq!(last["data"]["fault"], "bidder");
    let record = &frames.last().unwrap()["data"]["record"];
    let b2 = record["bids"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["bidder"] == fx.org(2).as_str())
        .unwrap();
    assert_eq!(
        b2["summary"],
        Value::Null,
        "a revoked bid's price is never shown"
    );
    fx.wait_phase("confirming").await;
    // The bidders' keys are published with the prices: the transcript
    // re-derives both results, and the revoked bid has none to show.
    let (_, o) = verified(&fx).await;
    assert_eq!((o.decrypted, o.revoked, o.key_releases), (2, 1, 0));
    fx.app.stop().await;
}

#[actix_web::test]
async fn the_host_extends_the_window_with_a_reason_and_its_new_end_is_exact() {
    let fx = fixture(
        TestStore::new(),
        "bidders",
        2,
        &[Some("5000000.00"), Some("5100000.00"), Some("5200000.00")],
        |_| {},
    )
    .await;
    let s = fx.section.clone();
    let mut public = fx.watch(None, 0).await;
    fx.pass_deadline().await;
    fx.wait_phase("decrypting").await;
    let ends = fx.state(None).await["state"]["window"]["ends_at_ms"]
        .as_i64()
        .unwrap();

    // No reason, no minutes, too many minutes: refused, nothing moves.
    for (minutes, reason) in [(10, ""), (0, "网络波动"), (24 * 60, "网络波动")] {
        let e = fx
            .host()
            .extend_window(&s, minutes, reason)
            .await
            .unwrap_err();
        assert_eq!(
            e.code(),
            Some("validation_failed"),
            "{minutes} {reason:?}: {e}"
        );
    }
    assert_eq!(
        fx.state(None).await["state"]["window"]["ends_at_ms"],
        ends,
        "unchanged"
    );

    let v = fx.host().extend_window(&s, 10, "网络波动").await.unwrap();
    let new_end = ends + 10 * 60_000;
    assert_eq!(v["window_ends_at_ms"], new_end);
    let frames = events_until(&mut public, "opening.window_extended").await;
    let ev = frames.last().unwrap();
    assert_eq!(ev["data"]["reason"], "网络波动");
    assert_eq!(ev["data"]["window_ends_at_ms"], new_end);

    // The old end no longer counts; the new one does, to the millisecond.
    let decrypt = |i: usize| {
        let (c, dir, key) = (
            fx.bidder(i),
            fx.dirs[i].clone().unwrap(),
            fx.keys[i].encryption.clone(),
        );
        async move { c.decrypt_own(&dir, &key).await }
    };
    fx.app.fixed_clock().set(Timestamp::from_millis(ends));
    assert_eq!(decrypt(0).await.unwrap()["status"], "decrypted");
    fx.app
        .fixed_clock()
        .set(Timestamp::from_millis(new_end - 1));
    assert_eq!(decrypt(1).await.unwrap()["status"], "decrypted");
    fx.app.fixed_clock().set(Timestamp::from_millis(new_end));
    let late = decrypt(2).await.unwrap_err();
    assert_eq!(late.code(), Some("invalid_transition"), "{late}");
    // Nor can a closed window be extended.
    let closed = fx.host().extend_window(&s, 10, "再延长").await.unwrap_err();
    assert_eq!(closed.code(), Some("invalid_transition"), "{closed}");
    fx.wait_phase("confirming").await;
    fx.app.stop().await;
}

#[actix_web::test]
async fn a_countersigned_platform_fault_withdraws_the_bid_in_bidders_mode() {
    let fx = fixture(
        TestStore::new(),
        "bidders",
        2,
        &[Some("5000000.00"), Some("5100000.00"), Some("5200000.00")],
        |_| {},
    )
    .await;
    let s = fx.section.clone();
    fx.pass_deadline().await;
    fx.wait_phase("decrypting").await;
    for i in 0..2 {
        fx.bidder(i)
            .decrypt_own(fx.dirs[i].as_ref().unwrap(), &fx.keys[i].encryption)
            .await
            .unwrap();
    }
    // The host declares a fault affecting bidder 2: the clock stops.
    let bad_bidder = fx
        .host()
        .declare_incident(&s, "CA 证书服务中断", &["org_nobody".to_string()])
        .await
        .unwrap_err();
    assert_eq!(bad_bidder.code(), Some("validation_failed"));
    let not_host = fx
        .bidder(0)
        .post::<Value>(
            &format!("/api/sections/{s}/opening/incidents"),
            &json!({"reason": "x"}),
        )
        .await
        .unwrap_err();
    assert_eq!(not_host.code(), Some("forbidden"));
    let inc = fx
        .host()
        .declare_incident(&s, "CA 证书服务中断，投标人无法解密", &[fx.org(2)])
        .await
        .unwrap();
    let ruling: IncidentRuling = serde_json::from_value(inc["ruling"].clone()).unwrap();
    assert_eq!(ruling.format, INCIDENT_FORMAT);
    let paused = fx.state(None).await;
    assert!(paused["state"]["window"]["paused_since_ms"].is_i64());
    // While paused the window does not close, however long.
    fx.app.advance(chrono::Duration::hours(2));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(fx.phase().await, "decrypting");
    // A countersignature by the wrong key, then by the supervisor's.
    let wrong = fx
        .client(&fx.w.supervisor)
        .countersign_incident(&s, &ruling, &sign::generate())
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), Some("proof_invalid"));
    fx.client(&fx.w.supervisor)
        .countersign_incident(&s, &ruling, &fx.supervisor_key)
        .await
        .unwrap();
    // Resumed, the window gets back the paused time; it then runs out.
    let resumed = fx.host().resume(&s).await.unwrap();
    let ends = resumed["window_ends_at_ms"].as_i64().unwrap();
    assert!(ends > fx.app.now().millis() + 20 * 60_000, "{resumed}");
    fx.app.advance(chrono::Duration::minutes(31));
    fx.wait_phase("confirming").await;
    let r = fx.bidder(0).opening_record(&s).await.unwrap();
    let b2 = r["record"]["bids"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["bidder"] == fx.org(2).as_str())
        .unwrap()
        .clone();
    assert_eq!(b2["status"], "withdrawn", "{b2}");
    assert_eq!(b2["fault"], "platform");
    fx.app.stop().await;
}

#[actix_web::test]
async fn in_escrow_mode_the_custodians_open_what_a_platform_fault_left_undecrypted() {
    let fx = fixture(
        TestStore::new(),
        "bidders_with_escrow",
        3,
        &[Some("5000000.00"), Some("5100000.00"), Some("5200000.00")],
        |_| {},
    )
    .await;
    let s = fx.section.clone();
    fx.pass_deadline().await;
    fx.wait_phase("decrypting").await;
    // No fault recorded yet: custodian keys are not wanted.
    let early = fx.release(0).await.unwrap_err();
    assert_eq!(early.code(), Some("invalid_transition"));
    for i in 0..2 {
        fx.bidder(i)
            .decrypt_own(fx.dirs[i].as_ref().unwrap(), &fx.keys[i].encryption)
            .await
            .unwrap();
    }
    let inc = fx
        .host()
        .declare_incident(&s, "平台解密服务故障", &[fx.org(2)])
        .await
        .unwrap();
    let ruling: IncidentRuling = serde_json::from_value(inc["ruling"].clone()).unwrap();
    fx.client(&fx.w.supervisor)
        .countersign_incident(&s, &ruling, &fx.supervisor_key)
        .await
        .unwrap();
    fx.host().resume(&s).await.unwrap();
    fx.app.advance(chrono::Duration::minutes(31));
    // The window closed; bidder 2's bid waits for the custodians.
    let mut public = fx.watch(None, 0).await;
    events_until(&mut public, "opening.window_closed").await;
    assert_eq!(fx.phase().await, "decrypting");
    for i in [1, 3, 4] {
        fx.release(i).await.unwrap();
    }
    let frames = events_until(&mut public, "opening.announced").await;
    let settled = frames
        .iter()
        .find(|f| kind(f) == "opening.bid_settled" && f["data"]["bidder"] == fx.org(2).as_str())
        .unwrap();
    assert_eq!(settled["data"]["status"], "decrypted");
    assert_eq!(settled["data"]["via"], "escrow");
    fx.wait_phase("confirming").await;
    // Two bids opened by their bidders, one by the custodians' keys: the
    // transcript re-derives all three.
    let (_, o) = verified(&fx).await;
    assert_eq!((o.decrypted, o.key_releases), (3, 3), "{o:?}");
    fx.app.stop().await;
}

#[actix_web::test]
async fn fewer_bids_than_min_bidders_fail_the_section_and_registered_bidders_are_told() {
    let fx = fixture(
        TestStore::new(),
        "custodians",
        3,
        &[Some("5000000.00"), Some("5100000.00")],
        |_| {},
    )
    .await;
    // Bidder 0 registered for the section (获取招标文件) and gets the notice.
    fx.app
        .post(
            &format!("/api/sections/{}/registration", fx.section),
            Some(&fx.w.bidders[0].token),
            json!({}),
        )
        .await
        .expect(200);
    let mut public = fx.watch(None, 0).await;
    fx.pass_deadline().await;
    let frames = events_until(&mut public, "section.failed").await;
    let failed = frames.last().unwrap();
    assert_eq!(failed["data"]["reason"], "too_few_bids");
    assert_eq!(failed["data"]["bids"], 2);
    assert!(!event_kinds(&frames).contains(&"opening.started".to_string()));
    fx.wait_phase("failed").await;
    fx.app.wait_for_mail(&fx.w.bidders[0].email, "流标").await;
    let refused = fx.release(0).await.unwrap_err();
    assert_eq!(refused.code(), Some("invalid_transition"));
    fx.app.stop().await;
}

/// A release signed for `custodian i` but with `secret` (maybe not its own).
fn release_with(fx: &Fx, i: usize, secret: &x25519::SecretKey, now: i64) -> SignedKeyRelease {
    let c = &fx.w.custodians[i];
    SignedKeyRelease::sign(
        KeyRelease {
            format: KEY_RELEASE_FORMAT.into(),
            section_id: fx.section.clone(),
            custodian: c.person.id.clone(),
            position: i as u32 + 1,
            public_key: hex::encode(fx.custodian_keys[i].public_key()),
            secret_key: hex::encode(*secret.to_bytes()),
            identity_key: hex::encode(c.identity.verifying_key().to_bytes()),
            released_at_ms: now,
        },
        &c.identity,
    )
}

#[actix_web::test]
async fn bad_key_releases_are_refused_and_change_nothing_and_idempotency_keys_replay() {
    let fx = fixture(
        TestStore::new(),
        "custodians",
        2,
        &[Some("5000000.00"), Some("5100000.00")],
        |_| {},
    )
    .await;
    let s = fx.section.clone();
    fx.pass_deadline().await;
    fx.wait_phase("decrypting").await;
    let now = fx.app.now().millis();
    let path = format!("/api/sections/{s}/opening/key-releases");
    let c0 = fx.client(&fx.w.custodians[0].person);
    let post = |r: SignedKeyRelease| {
        let c0 = c0.clone();
        let path = path.clone();
        async move { c0.post::<Value>(&path, &r).await }
    };
    // Another custodian's secret under my public key.
    let e = post(release_with(&fx, 0, &fx.custodian_keys[1], now))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("key_rejected"), "{e}");
    // Tampered after signing.
    let mut t = release_with(&fx, 0, &fx.custodian_keys[0], now);
    t.release.released_at_ms += 1;
    assert_eq!(post(t).await.unwrap_err().code(), Some("key_rejected"));
    // Signed by another identity.
    let mut forged = release_with(&fx, 0, &fx.custodian_keys[0], now);
    forged.signature = SignedKeyRelease::sign(forged.release.clone(), &sign::generate()).signature;
    assert_eq!(post(forged).await.unwrap_err().code(), Some("key_rejected"));
    // Claiming another custodian's position.
    let theirs = release_with(&fx, 1, &fx.custodian_keys[1], now);
    assert_eq!(
        post(theirs.clone()).await.unwrap_err().code(),
        Some("key_rejected")
    );
    // Not a custodian of this section at all.
    let e = fx
        .bidder(0)
        .post::<Value>(&path, &theirs)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("forbidden"));
    // Malformed JSON and unknown fields.
    let raw = fx
        .app
        .raw(
            "POST",
            &path,
            Some(&fx.w.custodians[0].person.token),
            "application/json",
            b"{\"release\":".to_vec(),
        )
        .await;
    raw.expect_error(400, "malformed_json");
    let mut extra = serde_json::to_value(release_with(&fx, 0, &fx.custodian_keys[0], now)).unwrap();
    extra["release"]["note"] = json!("x");
    let e = c0.post::<Value>(&path, &extra).await.unwrap_err();
    assert_eq!(e.code(), Some("validation_failed"));
    let st = fx.state(None).await;
    assert_eq!(st["state"]["releases"].as_array().unwrap().len(), 0);

    // A good release, sent twice with the same idempotency key: one release.
    let good = release_with(&fx, 0, &fx.custodian_keys[0], now);
    let a: Value = c0.post_once(&path, &good, "release-0-once").await.unwrap();
    let b: Value = c0.post_once(&path, &good, "release-0-once").await.unwrap();
    assert_eq!(a, b);
    // Without the key, a second release is a conflict.
    let e = c0.post::<Value>(&path, &good).await.unwrap_err();
    assert_eq!(e.code(), Some("conflict"));
    let st = fx.state(None).await;
    assert_eq!(st["state"]["releases"].as_array().unwrap().len(), 1);
    let rows = rows_of(&fx.app, "key_releases").await;
    assert!(
        !rows.contains(&hex::encode(*fx.custodian_keys[0].to_bytes())),
        "a released key is sealed at rest until the announcement"
    );

    // At the window's end, to the millisecond, a good release is late.
    let ends = st["state"]["window"]["ends_at_ms"].as_i64().unwrap();
    fx.app.fixed_clock().set(Timestamp::from_millis(ends));
    let c1 = fx.client(&fx.w.custodians[1].person);
    let late = c1
        .post::<Value>(&path, &release_with(&fx, 1, &fx.custodian_keys[1], ends))
        .await
        .unwrap_err();
    assert_eq!(late.code(), Some("invalid_transition"), "{late}");
    fx.app.stop().await;
}
