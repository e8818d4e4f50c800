//! Sealed bids end to end over HTTP: submission with receipts, revisions,
//! withdrawal, the deadline, the manifest, the transparency log, the
//! transcript — and every bad input refused without changing anything.

use std::path::Path;
use std::time::Duration;

use kaibiao::client::{Client, ClientError, ENVELOPE_FILE};
use kaibiao::crypto::envelope::SignedEnvelope;
use kaibiao::crypto::merkle;
use kaibiao::crypto::translog::SignedReceipt;
use kaibiao::domain::time::Timestamp;
use serde_json::{json, Value};

use crate::helpers::{spawn, Resp, TestApp, TestStore};
use crate::world::{seal, BidderKeys, Person, World};

pub(crate) async fn deadline(app: &TestApp, s: &str) -> Timestamp {
    Timestamp::parse_rfc3339(
        app.get(&format!("/api/public/sections/{s}"), None)
            .await
            .expect(200)["deadline"]
            .as_str()
            .unwrap(),
    )
    .unwrap()
}

pub(crate) async fn submit(
    app: &TestApp,
    w: &World,
    who: &Person,
    dir: &Path,
) -> Result<SignedReceipt, ClientError> {
    let client = w.client(app, who);
    client.submit(dir, &mut |_, _| {}).await?;
    flush(app).await;
    client
        .await_receipt(dir, false, Duration::from_secs(10))
        .await
}

/// Runs the log's flush now (the tests hold the clock; ADR 9).
pub(crate) async fn flush(app: &TestApp) {
    kaibiao::service::bids::flush_now(app.services())
        .await
        .unwrap();
}

pub(crate) async fn sealed(app: &TestApp, s: &str) {
    app.eventually("the manifest is logged", || async {
        app.get(&format!("/api/public/sections/{s}/manifest"), None)
            .await
            .status
            == 200
    })
    .await;
}

/// The section's public transcript, parsed.
pub(crate) async fn transcript(app: &TestApp, s: &str) -> kaibiao::transcript::Transcript {
    serde_json::from_value(
        app.get(&format!("/api/public/sections/{s}/transcript"), None)
            .await
            .expect(200),
    )
    .unwrap()
}

fn signed(dir: &Path) -> SignedEnvelope {
    serde_json::from_slice(&std::fs::read(dir.join(ENVELOPE_FILE)).unwrap()).unwrap()
}

/// Posts the sealed envelope in `dir` (the first step of a submission).
pub(crate) async fn post_envelope(app: &TestApp, token: &str, dir: &Path) -> Resp {
    app.post(
        "/api/bids",
        Some(token),
        serde_json::to_value(signed(dir)).unwrap(),
    )
    .await
}

/// Uploads `bytes` of part `part` of bid `hash`, from `offset`.
pub(crate) async fn put_part(
    app: &TestApp,
    token: &str,
    hash: &str,
    part: &str,
    offset: usize,
    bytes: Vec<u8>,
) -> Resp {
    app.raw(
        "PUT",
        &format!("/api/bids/{hash}/parts/{part}?offset={offset}"),
        Some(token),
        "application/octet-stream",
        bytes,
    )
    .await
}

pub(crate) struct Setup {
    pub app: TestApp,
    pub w: World,
    pub section: String,
    pub keys: Vec<BidderKeys>,
    pub root: tempfile::TempDir,
    _store: TestStore,
}

impl Setup {
    /// Bidder `i` seals a bid at `price` with `documents` (a first revision).
    pub async fn seal(
        &self,
        i: usize,
        price: &str,
        documents: &[u8],
    ) -> (std::path::PathBuf, String) {
        seal(
            &self.app,
            self.root.path(),
            &self.w.bidders[i],
            &self.keys[i],
            &self.section,
            price,
            documents,
            None,
        )
        .await
    }
}

pub(crate) async fn setup(tweak: impl FnOnce(&mut kaibiao::config::Config) + 'static) -> Setup {
    let store = TestStore::new();
    let app = spawn(&store).config(tweak).start().await;
    let w = World::build(&app).await;
    let section = w.published(&app, 20).await;
    let mut keys = Vec::new();
    for i in 0..w.bidders.len() {
        keys.push(w.bidder_keys(&app, i).await);
    }
    Setup {
        app,
        w,
        section,
        keys,
        root: tempfile::tempdir().unwrap(),
        _store: store,
    }
}

#[actix_web::test]
async fn a_receipt_verifies_and_fails_if_any_byte_of_it_or_of_the_envelope_changes() {
    let t = setup(|_| {}).await;
    let (app, w) = (&t.app, &t.w);
    let docs = vec![0x5au8; 2 * 1024 * 1024 + 3];
    let (dir, hash) = seal(
        app,
        t.root.path(),
        &w.bidders[0],
        &t.keys[0],
        &t.section,
        "12000000.00",
        &docs,
        None,
    )
    .await;
    let receipt = submit(app, w, &w.bidders[0], &dir).await.unwrap();
    let platform = app.get("/api/public/platform-key", None).await.expect(200)["public_key"]
        .as_str()
        .unwrap()
        .to_string();
    receipt.verify(&platform, &hash).unwrap();
    assert_eq!(receipt.receipt.envelope_hash, hash);
    assert_eq!(
        receipt.receipt.deadline_ms,
        deadline(app, &t.section).await.millis()
    );
    assert!(receipt.receipt.completed_at_ms < receipt.receipt.deadline_ms);

    // Every byte of the receipt matters: change each value in turn.
    let original = serde_json::to_value(&receipt).unwrap();
    let mut paths = Vec::new();
    leaf_paths(&original, &mut vec![], &mut paths);
    assert!(paths.len() > 30, "{}", paths.len());
    for p in &paths {
        let mut v = original.clone();
        mutate(&mut v, p);
        // (A change that no longer parses as a receipt is refused anyway.)
        if let Ok(r) = serde_json::from_value::<SignedReceipt>(v) {
            assert!(
                r.verify(&platform, &hash).is_err(),
                "changing {p:?} went unnoticed"
            );
        }
    }
    // …and of the envelope: another hash is another bid.
    let mut env = signed(&dir);
    env.envelope["created_at_ms"] = json!(env.envelope["created_at_ms"].as_i64().unwrap() + 1);
    let other =
        kaibiao::crypto::sha256_hex(&kaibiao::crypto::jcs::canonicalize(&env.envelope).unwrap());
    assert!(receipt.verify(&platform, &other).is_err());

    // The status shows it complete; the log has the commitment, and its
    // checkpoint is consistent with the latest one.
    let st = app
        .get(&format!("/api/bids/{hash}"), Some(&w.bidders[0].token))
        .await
        .expect(200);
    assert_eq!(st["state"], "complete");
    let latest = app.get("/api/log/checkpoint", None).await.expect(200);
    let logged = &receipt.receipt.log.as_ref().unwrap().checkpoint.checkpoint;
    let size1 = logged.size;
    let size2 = latest["checkpoint"]["size"].as_u64().unwrap();
    let proof = app
        .get(
            &format!("/api/log/proof/consistency?first={size1}&second={size2}"),
            None,
        )
        .await
        .expect(200);
    let proof: Vec<merkle::Hash> = proof["proof"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| kaibiao::crypto::hex_array(h.as_str().unwrap()).unwrap())
        .collect();
    merkle::verify_consistency(
        size1,
        size2,
        &hex::decode(&logged.root).unwrap(),
        &hex::decode(latest["checkpoint"]["root"].as_str().unwrap()).unwrap(),
        &proof,
    )
    .unwrap();
    t.app.stop().await;
}

fn leaf_paths(v: &Value, path: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                path.push(k.clone());
                leaf_paths(x, path, out);
                path.pop();
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                path.push(i.to_string());
                leaf_paths(x, path, out);
                path.pop();
            }
        }
        _ => out.push(path.clone()),
    }
}

fn mutate(v: &mut Value, path: &[String]) {
    let mut node = v;
    for k in path {
        node = match k.parse::<usize>() {
            Ok(i) if node.is_array() => &mut node[i],
            _ => &mut node[k.as_str()],
        };
    }
    *node = match node {
        Value::String(s) if s.chars().all(|c| c.is_ascii_hexdigit()) && !s.is_empty() => {
            let mut b = s.clone().into_bytes();
            b[0] = if b[0] == b'0' { b'1' } else { b'0' };
            Value::String(String::from_utf8(b).unwrap())
        }
        Value::String(s) => Value::String(format!("{s}x")),
        Value::Number(n) => json!(n.as_i64().unwrap_or(0) + 1),
        Value::Bool(b) => Value::Bool(!*b),
        Value::Null => json!("x"),
        _ => unreachable!(),
    };
}

#[actix_web::test]
async fn the_manifest_covers_exactly_the_accepted_bids_and_each_bidder_can_prove_inclusion() {
    let t = setup(|_| {}).await;
    let (app, w, s) = (&t.app, &t.w, t.section.as_str());
    // Bidder 0: one bid. Bidder 1: a bid, then a revision that supersedes it.
    // Bidder 2: a bid, then withdrawn.
    let (d0, h0) = t.seal(0, "10000000.00", b"docs 0").await;
    submit(app, w, &w.bidders[0], &d0).await.unwrap();
    let (d1, h1) = t.seal(1, "11000000.00", b"docs 1").await;
    submit(app, w, &w.bidders[1], &d1).await.unwrap();
    let (d1b, h1b) = seal(
        app,
        t.root.path(),
        &w.bidders[1],
        &t.keys[1],
        s,
        "10500000.00",
        b"docs 1 v2",
        Some(&d1),
    )
    .await;
    submit(app, w, &w.bidders[1], &d1b).await.unwrap();
    assert_eq!(
        app.get(&format!("/api/bids/{h1}"), Some(&w.bidders[1].token))
            .await
            .expect(200)["state"],
        "superseded"
    );
    let (d2, h2) = t.seal(2, "9000000.00", b"docs 2").await;
    submit(app, w, &w.bidders[2], &d2).await.unwrap();
    let wr = w
        .client(app, &w.bidders[2])
        .withdraw(&d2, &t.keys[2].signing, app.now().millis())
        .await
        .unwrap();
    assert_eq!(wr.receipt.kind, "withdrawal");
    // Nobody else can see or withdraw a bid.
    app.get(&format!("/api/bids/{h0}"), Some(&w.bidders[1].token))
        .await
        .expect_error(404, "not_found");
    app.get(&format!("/api/bids/{h0}"), Some(&w.host.token))
        .await
        .expect_error(403, "forbidden");

    // Before the deadline: no manifest, no transcript.
    app.get(&format!("/api/public/sections/{s}/manifest"), None)
        .await
        .expect_error(404, "not_found");
    app.get(&format!("/api/public/sections/{s}/transcript"), None)
        .await
        .expect_error(404, "not_found");

    app.fixed_clock().set(deadline(app, s).await);
    sealed(app, s).await;
    let m = app
        .get(&format!("/api/public/sections/{s}/manifest"), None)
        .await
        .expect(200);
    let mut want = vec![h0.clone(), h1b.clone()];
    want.sort();
    let listed: Vec<String> = m["manifest"]["bids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["envelope_hash"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        listed, want,
        "exactly the accepted bids: not the superseded {h1}, not the withdrawn {h2}"
    );
    assert_eq!(m["manifest"]["count"], 2);
    // The manifest leaf is in the signed log.
    let pos: kaibiao::crypto::translog::LogPosition =
        serde_json::from_value(m["log"].clone()).unwrap();
    let platform = app.get("/api/public/platform-key", None).await.expect(200)["public_key"]
        .as_str()
        .unwrap()
        .to_string();
    pos.verify(&platform).unwrap();
    // Each bidder proves its envelope is in the manifest.
    for h in &want {
        let p = app
            .get(
                &format!("/api/public/sections/{s}/manifest/proof?envelope_hash={h}"),
                None,
            )
            .await
            .expect(200);
        let proof: Vec<merkle::Hash> = p["proof"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| kaibiao::crypto::hex_array(x.as_str().unwrap()).unwrap())
            .collect();
        merkle::verify_inclusion(
            p["index"].as_u64().unwrap(),
            p["size"].as_u64().unwrap(),
            &merkle::leaf_hash(&hex::decode(h).unwrap()),
            &proof,
            &hex::decode(m["manifest"]["root"].as_str().unwrap()).unwrap(),
        )
        .unwrap();
    }
    app.get(
        &format!("/api/public/sections/{s}/manifest/proof?envelope_hash={h2}"),
        None,
    )
    .await
    .expect_error(404, "not_found");
    // After the deadline bidders see their bids' final status.
    assert_eq!(
        app.get(&format!("/api/bids/{h2}"), Some(&w.bidders[2].token))
            .await
            .expect(200)["state"],
        "withdrawn"
    );
    assert_eq!(
        app.get(&format!("/api/bids/{h1b}"), Some(&w.bidders[1].token))
            .await
            .expect(200)["state"],
        "accepted"
    );

    // The transcript checks out offline…
    let tr = transcript(app, s).await;
    let summary = kaibiao::transcript::verify(&tr).unwrap();
    assert_eq!(summary.accepted, 2);
    assert_eq!(summary.bids, 4);
    // …and not when a hash, a signature or a time in it changes.
    let v = serde_json::to_value(&tr).unwrap();
    for path in [
        vec!["bids", "0", "received_at_ms"],
        vec!["bids", "1", "signed_envelope", "signature"],
        vec!["manifest", "root"],
        vec!["manifest", "sealed_at_ms"],
        vec!["log", "checkpoint", "signature"],
        vec!["log", "checkpoint", "checkpoint", "root"],
        vec!["params", "0", "params_hash"],
        vec!["openings", "0", "opening", "salt"],
        vec!["bids", "2", "receipt", "receipt", "completed_at_ms"],
    ] {
        let mut x = v.clone();
        mutate(
            &mut x,
            &path.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        );
        let broken: kaibiao::transcript::Transcript = serde_json::from_value(x).unwrap();
        assert!(
            kaibiao::transcript::verify(&broken).is_err(),
            "changing {path:?} went unnoticed"
        );
    }
    // Dropping a bid is noticed too.
    let mut x = tr.clone();
    x.bids
        .retain(|b| b.status != "accepted" || b.envelope_hash != h0);
    assert!(kaibiao::transcript::verify(&x).is_err());
    t.app.stop().await;
}

#[actix_web::test]
async fn uploads_resume_and_bad_parts_are_discarded() {
    let t = setup(|_| {}).await;
    let (app, w) = (&t.app, &t.w);
    let docs: Vec<u8> = (0..3 * 1024 * 1024 + 11).map(|i| (i % 253) as u8).collect();
    let (dir, hash) = t.seal(0, "8000000.00", &docs).await;
    let token = w.bidders[0].token.clone();
    post_envelope(app, &token, &dir).await.expect(201);
    let part = std::fs::read(dir.join("documents.part")).unwrap();

    // A first piece, then an attempt at the wrong offset, then the rest.
    let half = part.len() / 2;
    let r = put_part(app, &token, &hash, "documents", 0, part[..half].to_vec())
        .await
        .expect(200);
    assert_eq!(r["received"], half);
    let wrong = put_part(app, &token, &hash, "documents", 5, part[5..10].to_vec()).await;
    let v = wrong.expect_error(409, "upload_offset");
    assert_eq!(v["details"][0]["message"], half.to_string());
    // More than the part holds is refused, and nothing of it is kept.
    let mut too_much = part[half..].to_vec();
    too_much.push(0);
    put_part(app, &token, &hash, "documents", half, too_much)
        .await
        .expect_error(413, "payload_too_large");
    // Bytes that do not hash to the envelope's value are discarded whole.
    let mut bad = part[half..].to_vec();
    bad[100] ^= 0xff;
    put_part(app, &token, &hash, "documents", half, bad)
        .await
        .expect_error(422, "part_hash_mismatch");
    let st = app
        .get(&format!("/api/bids/{hash}"), Some(&token))
        .await
        .expect(200);
    assert_eq!(st["parts"][1]["received"], 0, "{st}");
    assert_eq!(st["state"], "receiving");
    // The client resumes from where the platform is and completes.
    put_part(app, &token, &hash, "documents", 0, part[..half].to_vec())
        .await
        .expect(200);
    let receipt = submit(app, w, &w.bidders[0], &dir).await.unwrap();
    assert_eq!(receipt.receipt.envelope_hash, hash);
    // The stored ciphertext is byte for byte what was sealed.
    let stored = app
        .data_dir
        .join("blobs/sha256")
        .join(&receipt.receipt.parts[1].sha256[0..2])
        .join(&receipt.receipt.parts[1].sha256[2..4])
        .join(&receipt.receipt.parts[1].sha256);
    assert_eq!(std::fs::read(stored).unwrap(), part);
    t.app.stop().await;
}

#[actix_web::test]
async fn bad_envelopes_are_refused_and_change_nothing() {
    let t = setup(|_| {}).await;
    let (app, w, s) = (&t.app, &t.w, t.section.as_str());
    let token = w.bidders[0].token.clone();
    let (dir, _) = t.seal(0, "7000000.00", b"docs").await;
    let good = serde_json::to_value(signed(&dir)).unwrap();

    // A field changed: the signature no longer covers it.
    for (field, value) in [
        ("section_id", json!("sec_other")),
        ("params_hash", json!("00".repeat(32))),
        ("revision", json!(2)),
        ("threshold", json!(2)),
    ] {
        let mut x = good.clone();
        x["envelope"][field] = value;
        app.post("/api/bids", Some(&token), x)
            .await
            .expect_error(422, "envelope_invalid");
    }
    // Signed by a key the organisation has not registered.
    let stranger = BidderKeys {
        signing: kaibiao::crypto::sign::generate(),
        encryption: t.keys[0].encryption.clone(),
    };
    let (dir2, _) = seal(
        app,
        t.root.path(),
        &w.bidders[0],
        &stranger,
        s,
        "7000000.00",
        b"docs",
        None,
    )
    .await;
    post_envelope(app, &token, &dir2)
        .await
        .expect_error(422, "envelope_invalid");
    // Someone else's envelope submitted by another bidder.
    app.post("/api/bids", Some(&w.bidders[1].token), good.clone())
        .await
        .expect_error(422, "envelope_invalid");
    // Not JSON of the right shape.
    app.post(
        "/api/bids",
        Some(&token),
        json!({"envelope": good["envelope"], "signature": "zz", "extra": 1}),
    )
    .await
    .expect_error(422, "validation_failed");
    // Nothing was stored by any of it.
    assert_eq!(
        app.get("/api/bids", Some(&token))
            .await
            .expect(200)
            .as_array()
            .unwrap()
            .len(),
        0
    );

    // Recipients that are not the section's custodians (sealed against a
    // doctored copy of the parameters) are refused.
    let (params, hash, json_text) = Client::new(&app.base).params(s).await.unwrap();
    let mut doctored: Value = serde_json::from_str(&json_text).unwrap();
    doctored["custodians"][0]["section_key"] = json!(hex::encode(
        kaibiao::crypto::x25519::SecretKey::generate().public_key()
    ));
    let doctored_text =
        String::from_utf8(kaibiao::crypto::jcs::canonicalize(&doctored).unwrap()).unwrap();
    let fake_hash = kaibiao::crypto::sha256_hex(doctored_text.as_bytes());
    let out = t.root.path().join("doctored");
    let docs = t.root.path().join("doctored-docs");
    std::fs::write(&docs, b"x").unwrap();
    kaibiao::client::seal_to_dir(
        kaibiao::client::SealRequest {
            params_json: &doctored_text,
            params_hash: &fake_hash,
            bidder: w.bidders[0].org_id.as_deref().unwrap(),
            signing: &t.keys[0].signing,
            encryption_public: t.keys[0].encryption.public_key(),
            fields: [("price".to_string(), "1.00".to_string())].into(),
            documents: &docs,
            supersedes: None,
            now_ms: 0,
        },
        &out,
        &mut |_| {},
    )
    .unwrap();
    let mut env = signed(&out);
    // Even claiming the real parameters' hash (re-signed by the bidder) does not help.
    env.envelope["params_hash"] = json!(hash);
    let canonical = kaibiao::crypto::jcs::canonicalize(&env.envelope).unwrap();
    env.signature = hex::encode(kaibiao::crypto::sign::sign(
        &t.keys[0].signing,
        kaibiao::crypto::envelope::label::ENVELOPE,
        &canonical,
    ));
    let v = app
        .post(
            "/api/bids",
            Some(&token),
            serde_json::to_value(&env).unwrap(),
        )
        .await
        .expect_error(422, "envelope_invalid");
    assert!(v["message"].as_str().unwrap().contains("custodians"), "{v}");
    assert_eq!(params.custodians.len(), 5);
    t.app.stop().await;
}

#[actix_web::test]
async fn revisions_cannot_roll_back_and_concurrent_submissions_do_not_both_win() {
    let t = setup(|_| {}).await;
    let (app, w, s) = (&t.app, &t.w, t.section.as_str());
    let token = w.bidders[0].token.clone();
    // Two different first bids at once: exactly one is accepted.
    let (a, _) = t.seal(0, "1.00", b"a").await;
    let (b, _) = t.seal(0, "2.00", b"b").await;
    let (ra, rb) = tokio::join!(
        post_envelope(app, &token, &a),
        post_envelope(app, &token, &b),
    );
    let statuses = [ra.status.as_u16(), rb.status.as_u16()];
    assert!(
        statuses.contains(&201) && statuses.contains(&409),
        "{statuses:?} {} {}",
        ra.text(),
        rb.text()
    );
    let (winner, loser) = if ra.status == 201 { (a, rb) } else { (b, ra) };
    loser.expect_error(409, "revision_conflict");
    submit(app, w, &w.bidders[0], &winner).await.unwrap();
    // Revision 2 supersedes 1; sending revision 1 of a new bid again is a roll-back.
    let (r2, _) = seal(
        app,
        t.root.path(),
        &w.bidders[0],
        &t.keys[0],
        s,
        "3.00",
        b"c",
        Some(&winner),
    )
    .await;
    submit(app, w, &w.bidders[0], &r2).await.unwrap();
    let (again, _) = seal(
        app,
        t.root.path(),
        &w.bidders[0],
        &t.keys[0],
        s,
        "4.00",
        b"d",
        Some(&winner),
    )
    .await;
    post_envelope(app, &token, &again)
        .await
        .expect_error(409, "revision_conflict");
    // The same envelope twice is the same submission (idempotent).
    post_envelope(app, &token, &r2).await.expect(200);
    t.app.stop().await;
}

#[actix_web::test]
async fn late_attempts_are_refused_to_the_millisecond_and_recorded() {
    let t = setup(|_| {}).await;
    let (app, w, s) = (&t.app, &t.w, t.section.as_str());
    let d = deadline(app, s).await;
    let token = w.bidders[0].token.clone();
    // Envelope in time; the last part 1 ms after the deadline.
    let (dir, hash) = t.seal(0, "5.00", b"late docs").await;
    app.fixed_clock()
        .set(d.minus(chrono::Duration::milliseconds(2)));
    post_envelope(app, &token, &dir).await.expect(201);
    let summary = std::fs::read(dir.join("summary.part")).unwrap();
    put_part(app, &token, &hash, "summary", 0, summary)
        .await
        .expect(200);
    app.fixed_clock()
        .set(d.plus(chrono::Duration::milliseconds(1)));
    let docs = std::fs::read(dir.join("documents.part")).unwrap();
    put_part(app, &token, &hash, "documents", 0, docs)
        .await
        .expect_error(409, "deadline_passed");
    // A new envelope at the deadline itself.
    let (dir2, _) = t.seal(1, "6.00", b"docs").await;
    app.fixed_clock().set(d);
    post_envelope(app, &w.bidders[1].token, &dir2)
        .await
        .expect_error(409, "deadline_passed");
    sealed(app, s).await;
    // After the sealing filed the incomplete bid away, a part is still late
    // (recorded), not an unknown bid.
    let docs = std::fs::read(dir.join("documents.part")).unwrap();
    put_part(app, &token, &hash, "documents", 0, docs)
        .await
        .expect_error(409, "deadline_passed");
    let tr = app
        .get(&format!("/api/public/sections/{s}/transcript"), None)
        .await
        .expect(200);
    let late = tr["late_attempts"].as_array().unwrap();
    assert_eq!(late.len(), 3, "{late:?}");
    assert!(late
        .iter()
        .any(|l| l["stage"] == "part" && l["envelope_hash"] == hash.as_str()));
    assert!(late
        .iter()
        .any(|l| l["stage"] == "envelope" && l["bidder"] == w.bidders[1].org_id.clone().unwrap()));
    assert_eq!(
        tr["manifest"]["count"], 0,
        "the incomplete bid does not count"
    );
    assert_eq!(tr["bids"][0]["status"], "incomplete");
    kaibiao::transcript::verify(&serde_json::from_value(tr).unwrap()).unwrap();
    t.app.stop().await;
}

/// The last part starts 1 ms before the deadline and the sealing lands
/// while it streams: the part lost the race, so it is late — refused as
/// `deadline_passed` and recorded — not "changed by another upload".
#[actix_web::test]
async fn a_last_part_overtaken_by_the_sealing_mid_stream_is_a_recorded_late_attempt() {
    let t = setup(|_| {}).await;
    let (app, w, s) = (&t.app, &t.w, t.section.as_str());
    let d = deadline(app, s).await;
    let token = w.bidders[0].token.clone();
    // Large enough that the first half reaches the disk (the server writes
    // in batches of 1 MiB).
    let docs = vec![7u8; 3 * 1024 * 1024];
    let (dir, hash) = t.seal(0, "5.00", &docs).await;
    app.fixed_clock()
        .set(d.minus(chrono::Duration::milliseconds(1)));
    post_envelope(app, &token, &dir).await.expect(201);
    let summary = std::fs::read(dir.join("summary.part")).unwrap();
    put_part(app, &token, &hash, "summary", 0, summary)
        .await
        .expect(200);
    // The documents begin to stream in time…
    let part = std::fs::read(dir.join("documents.part")).unwrap();
    let (tx, rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(1);
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, std::io::Error>(b), rx))
    });
    let request = app
        .client
        .put(app.url(&format!("/api/bids/{hash}/parts/documents?offset=0")))
        .bearer_auth(&token)
        .insert_header(("Content-Type", "application/octet-stream"))
        .send_stream(Box::pin(body));
    let upload = actix_web::rt::spawn(async move {
        let mut r = request.await.unwrap();
        let body = r.body().await.unwrap().to_vec();
        (r.status(), body)
    });
    let half = part.len() / 2;
    tx.send(bytes::Bytes::copy_from_slice(&part[..half]))
        .await
        .unwrap();
    let upload_file = app.data_dir.join("blobs/uploads");
    app.eventually("the first half is on disk", || {
        let started = std::fs::read_dir(&upload_file)
            .map(|d| d.flatten().any(|e| e.metadata().unwrap().len() > 0))
            .unwrap_or(false);
        async move { started }
    })
    .await;
    // …the deadline passes and the sealing files the bid away…
    app.fixed_clock()
        .set(d.plus(chrono::Duration::milliseconds(1)));
    sealed(app, s).await;
    // …and then the rest arrives.
    tx.send(bytes::Bytes::copy_from_slice(&part[half..]))
        .await
        .unwrap();
    drop(tx);
    let (status, body) = upload.await.unwrap();
    let r = crate::helpers::Resp {
        status,
        headers: Default::default(),
        body,
    };
    r.expect_error(409, "deadline_passed");
    let tr = app
        .get(&format!("/api/public/sections/{s}/transcript"), None)
        .await
        .expect(200);
    let late = tr["late_attempts"].as_array().unwrap();
    assert!(
        late.iter()
            .any(|l| l["stage"] == "part" && l["envelope_hash"] == hash.as_str()),
        "the late part is recorded: {late:?}"
    );
    assert_eq!(tr["bids"][0]["status"], "incomplete");
    kaibiao::transcript::verify(&serde_json::from_value(tr).unwrap()).unwrap();
    t.app.stop().await;
}

#[actix_web::test]
async fn a_grace_period_lets_uploads_begun_in_time_finish() {
    let store = TestStore::new();
    let app = spawn(&store).start().await;
    let w = World::build(&app).await;
    let p = w.project(&app, "construction", true).await;
    let mut body = w.draft_body(&app, 20);
    body["grace_seconds"] = json!(600);
    let s = w.publish_body(&app, &p, body).await;
    let keys = w.bidder_keys(&app, 0).await;
    let root = tempfile::tempdir().unwrap();
    let d = deadline(&app, &s).await;
    let (dir, hash) = seal(
        &app,
        root.path(),
        &w.bidders[0],
        &keys,
        &s,
        "5.00",
        b"docs",
        None,
    )
    .await;
    app.fixed_clock().set(d.minus(chrono::Duration::seconds(1)));
    post_envelope(&app, &w.bidders[0].token, &dir)
        .await
        .expect(201);
    app.fixed_clock().set(d.plus(chrono::Duration::minutes(5)));
    // Sealed to new envelopes, still open to these parts.
    app.eventually("sealed", || async {
        app.get(&format!("/api/public/sections/{s}"), None)
            .await
            .expect(200)["state"]
            == "sealed"
    })
    .await;
    let receipt = submit(&app, &w, &w.bidders[0], &dir).await.unwrap();
    assert!(receipt.receipt.completed_at_ms > d.millis());
    app.get(&format!("/api/public/sections/{s}/manifest"), None)
        .await
        .expect_error(404, "not_found");
    app.fixed_clock().set(d.plus(chrono::Duration::minutes(10)));
    sealed(&app, &s).await;
    let m = app
        .get(&format!("/api/public/sections/{s}/manifest"), None)
        .await
        .expect(200);
    assert_eq!(m["manifest"]["bids"][0]["envelope_hash"], hash);
    let tr = app
        .get(&format!("/api/public/sections/{s}/transcript"), None)
        .await
        .expect(200);
    kaibiao::transcript::verify(&serde_json::from_value(tr).unwrap()).unwrap();
    app.stop().await;
}

/// A tmpfs of a few megabytes, unmounted when dropped (the temporary
/// directory it sits in goes after it). Needs root (CI has it).
struct SmallDisk(std::path::PathBuf, #[allow(dead_code)] tempfile::TempDir);

impl SmallDisk {
    fn mount(kib: u64) -> SmallDisk {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("disk");
        std::fs::create_dir(&path).unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={kib}k"), "tmpfs"])
            .arg(&path)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(
            ok,
            "this test mounts a small tmpfs to fill the disk; it needs root (as CI has)"
        );
        SmallDisk(path, dir)
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[actix_web::test]
async fn a_full_disk_mid_upload_keeps_nothing_and_says_so() {
    let disk = SmallDisk::mount(2048);
    let blob_dir = disk.0.clone();
    let t = setup(move |c| c.server.blob_dir = blob_dir).await;
    let (app, w) = (&t.app, &t.w);
    // The tender document already took a little; a 3 MiB bid cannot fit.
    let docs = vec![7u8; 3 * 1024 * 1024];
    let (dir, hash) = t.seal(0, "1.00", &docs).await;
    let token = w.bidders[0].token.clone();
    post_envelope(app, &token, &dir).await.expect(201);
    let part = std::fs::read(dir.join("documents.part")).unwrap();
    let r = put_part(app, &token, &hash, "documents", 0, part).await;
    let v = r.expect_error(507, "storage_full");
    assert!(
        !v["message"].as_str().unwrap().contains("No space"),
        "no internal text: {v}"
    );
    let st = app
        .get(&format!("/api/bids/{hash}"), Some(&token))
        .await
        .expect(200);
    assert_eq!(st["parts"][1]["received"], 0);
    assert_eq!(st["state"], "receiving");
    // Nothing half-stored: the upload file holds no bytes.
    for e in std::fs::read_dir(disk.0.join("uploads")).unwrap().flatten() {
        assert_eq!(e.metadata().unwrap().len(), 0, "{:?} kept bytes", e.path());
    }
    t.app.stop().await;
}

#[actix_web::test]
async fn an_upload_cut_off_mid_stream_keeps_nothing_unacknowledged_and_resumes() {
    let t = setup(|_| {}).await;
    let (app, w) = (&t.app, &t.w);
    let docs = vec![1u8; 3 * 1024 * 1024];
    let (dir, hash) = t.seal(0, "2.00", &docs).await;
    let token = w.bidders[0].token.clone();
    post_envelope(app, &token, &dir).await.expect(201);
    let part = std::fs::read(dir.join("documents.part")).unwrap();
    // The client sends 1 MiB, then its connection breaks.
    let first = bytes::Bytes::copy_from_slice(&part[..1 << 20]);
    let body = futures_util::stream::iter(vec![
        Ok::<_, std::io::Error>(first),
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "cable pulled",
        )),
    ]);
    let r = app
        .client
        .put(app.url(&format!("/api/bids/{hash}/parts/documents?offset=0")))
        .bearer_auth(&token)
        .send_stream(body)
        .await;
    assert!(r.is_err() || !r.unwrap().status().is_success());
    // Whatever arrived before the break was not acknowledged, so it is not kept.
    let st = app
        .get(&format!("/api/bids/{hash}"), Some(&token))
        .await
        .expect(200);
    assert_eq!(st["parts"][1]["received"], 0, "{st}");
    // The server learns of the break a moment after the client does; give
    // it that moment to cut the file back, then nothing may remain.
    let kept = || -> Vec<(std::path::PathBuf, u64)> {
        std::fs::read_dir(app.data_dir.join("blobs/uploads"))
            .unwrap()
            .flatten()
            .map(|e| (e.path(), e.metadata().unwrap().len()))
            .filter(|(_, len)| *len > 0)
            .collect()
    };
    let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !kept().is_empty() && std::time::Instant::now() < until {
        actix_web::rt::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(kept().is_empty(), "unacknowledged bytes kept: {:?}", kept());
    // The client resumes and completes.
    let receipt = submit(app, w, &w.bidders[0], &dir).await.unwrap();
    assert_eq!(receipt.receipt.envelope_hash, hash);
    t.app.stop().await;
}
