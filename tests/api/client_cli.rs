//! The bidder's and custodian's command line against a live platform:
//! keys (0600, passphrase), sign-in, registration with proofs, offline
//! sealing against fetched and checked parameters, submission, status,
//! receipt verification (and its failure on any change), withdrawal; the
//! opening (sign-in, decryption, objection, confirmation, closing,
//! countersignature, watching the room) — and `kaibiao demo` end to end.

use std::path::Path;

use serde_json::json;

use crate::fixture::{Fixture, Phase};
use crate::helpers::{spawn, TestStore, PASSWORD};
use crate::world::World;

fn kb(args: &[&str], stdin: &str, env: &[(&str, &str)]) -> (bool, String, String) {
    crate::cli::run_with(args, stdin, env)
}

fn p(path: &Path) -> String {
    path.display().to_string()
}

fn ok((success, out, err): (bool, String, String)) -> String {
    assert!(success, "command failed:\n{out}\n{err}");
    out
}

/// `bid verify-receipt` refuses a copy of the bid directory's `file` with
/// the first digit of `field` changed.
fn refused_with_a_digit_changed(bid: &Path, scratch: &Path, file: &str, field: &str) {
    let text = std::fs::read_to_string(bid.join(file)).unwrap();
    let key = format!("\"{field}\": ");
    let at = text.find(&key).unwrap() + key.len();
    let mut bad = text.into_bytes();
    bad[at] = if bad[at] == b'1' { b'2' } else { b'1' };
    let copy = scratch.join(format!("bad-{file}"));
    std::fs::write(&copy, &bad).unwrap();
    let (success, _, err) = kb(
        &[
            "bid",
            "verify-receipt",
            "--bid",
            &p(bid),
            "--receipt",
            &p(&copy),
        ],
        "",
        &[],
    );
    assert!(!success && err.contains("NOT valid"), "{err}");
}

#[actix_web::test]
async fn a_bidder_and_custodians_work_from_the_command_line() {
    let store = TestStore::new();
    let app = spawn(&store).start().await;
    let w = World::build(&app).await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();

    // A custodian of a fresh draft makes, registers and uses keys with the CLI.
    let s = w.draft(&app, 30).await;
    let c0 = &w.custodians[0].person;
    let csession = d.join("custodian-session.json");
    ok(kb(
        &[
            "login",
            "--server",
            &app.base,
            "--username",
            &c0.username,
            "--session",
            &p(&csession),
        ],
        &format!("{PASSWORD}\n"),
        &[],
    ));
    let ckeys = d.join("custodian-keys");
    ok(kb(&["custodian", "keygen", "--dir", &p(&ckeys)], "", &[]));
    ok(kb(
        &[
            "custodian",
            "register-identity",
            "--keys",
            &p(&ckeys),
            "--session",
            &p(&csession),
        ],
        "",
        &[],
    ));
    ok(kb(
        &[
            "custodian",
            "section-key",
            "--section",
            &s,
            "--keys",
            &p(&ckeys),
            "--session",
            &p(&csession),
        ],
        "",
        &[],
    ));
    assert!(ckeys.join(format!("section-{s}.key")).is_file());
    // The others register through the API; then the section is published.
    for c in &w.custodians[1..] {
        let sk = kaibiao::crypto::x25519::SecretKey::generate();
        w.client(&app, &c.person)
            .register_section_key(&s, &c.person.id, &c.identity, &sk)
            .await
            .unwrap();
    }
    w.upload(&app, &s, "招标文件.pdf", b"%PDF").await;
    app.post(
        &format!("/api/sections/{s}/publish"),
        Some(&w.host.token),
        json!({}),
    )
    .await
    .expect(200);

    // The bidder: keys with a passphrase, private files.
    let b = &w.bidders[0];
    let session = d.join("session.json");
    let keys = d.join("keys");
    let env = [("BID_PASSPHRASE", "a long key passphrase")];
    ok(kb(
        &[
            "bid",
            "keygen",
            "--dir",
            &p(&keys),
            "--passphrase-env",
            "BID_PASSPHRASE",
        ],
        "",
        &env,
    ));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for f in ["signing.key", "encryption.key"] {
            assert_eq!(
                std::fs::metadata(keys.join(f))
                    .unwrap()
                    .permissions()
                    .mode()
                    & 0o777,
                0o600,
                "{f}"
            );
        }
    }
    assert!(!std::fs::read_to_string(keys.join("signing.key"))
        .unwrap()
        .contains("\"secret\""));
    // Wrong password, then right.
    let (success, _, err) = kb(
        &[
            "login",
            "--server",
            &app.base,
            "--username",
            &b.username,
            "--session",
            &p(&session),
        ],
        "wrong password\n",
        &[],
    );
    assert!(!success && err.contains("invalid_credentials"), "{err}");
    ok(kb(
        &[
            "login",
            "--server",
            &app.base,
            "--username",
            &b.username,
            "--session",
            &p(&session),
        ],
        &format!("{PASSWORD}\n"),
        &[],
    ));
    // Keys without the passphrase are refused; with it they register.
    let (success, _, err) = kb(
        &[
            "bid",
            "register-keys",
            "--keys",
            &p(&keys),
            "--session",
            &p(&session),
        ],
        "",
        &[],
    );
    assert!(!success && err.contains("passphrase"), "{err}");
    ok(kb(
        &[
            "bid",
            "register-keys",
            "--keys",
            &p(&keys),
            "--session",
            &p(&session),
            "--passphrase-env",
            "BID_PASSPHRASE",
        ],
        "",
        &env,
    ));

    // Seal, submit, check.
    let summary = d.join("summary.json");
    std::fs::write(
        &summary,
        r#"{"price": "45678901.23", "duration_days": "400"}"#,
    )
    .unwrap();
    let docs = d.join("docs.zip");
    std::fs::write(&docs, vec![3u8; 1_500_000]).unwrap();
    let bid = d.join("bid1");
    let seal_args = |out: &Path, extra: &[&str]| {
        let mut a = vec![
            "bid",
            "seal",
            "--section",
            &s,
            "--keys",
            &p(&keys),
            "--summary",
            &p(&summary),
            "--documents",
            &p(&docs),
            "--session",
            &p(&session),
            "--passphrase-env",
            "BID_PASSPHRASE",
        ]
        .into_iter()
        .map(str::to_string)
        .collect::<Vec<_>>();
        a.extend(["--out".to_string(), p(out)]);
        a.extend(extra.iter().map(|x| x.to_string()));
        a
    };
    let a = seal_args(&bid, &[]);
    let out = ok(kb(
        &a.iter().map(String::as_str).collect::<Vec<_>>(),
        "",
        &env,
    ));
    assert!(out.contains("sealed revision 1"), "{out}");
    let out = ok(kb(
        &[
            "bid",
            "submit",
            "--no-wait",
            "--bid",
            &p(&bid),
            "--session",
            &p(&session),
        ],
        "",
        &[],
    ));
    assert!(out.contains("complete: envelope"), "{out}");
    // At once a signed promise (ADR 9), which verifies — and not with a byte
    // changed; the receipt comes only with the log's flush.
    let out = ok(kb(&["bid", "verify-receipt", "--bid", &p(&bid)], "", &[]));
    assert!(out.starts_with("valid promise:"), "{out}");
    refused_with_a_digit_changed(&bid, d, "promise.json", "flush_at_ms");
    let receipt_cmd = [
        "bid",
        "receipt",
        "--bid",
        &p(&bid),
        "--session",
        &p(&session),
    ];
    let (success, _, err) = kb(&receipt_cmd, "", &[]);
    assert!(!success && err.contains("no receipt yet"), "{err}");
    crate::bids::flush(&app).await;
    let out = ok(kb(&receipt_cmd, "", &[]));
    assert!(out.contains("logged, as promised"), "{out}");
    let out = ok(kb(&["bid", "verify-receipt", "--bid", &p(&bid)], "", &[]));
    assert!(out.starts_with("valid:"), "{out}");
    let status = ok(kb(
        &[
            "bid",
            "status",
            "--bid",
            &p(&bid),
            "--session",
            &p(&session),
        ],
        "",
        &[],
    ));
    assert!(status.contains("\"state\": \"complete\""), "{status}");

    // A receipt with one byte changed, or for a changed envelope, is refused.
    refused_with_a_digit_changed(&bid, d, "receipt.json", "completed_at_ms");
    let env_text = std::fs::read_to_string(bid.join("envelope.json")).unwrap();
    std::fs::write(
        bid.join("envelope.json"),
        env_text.replacen("\"revision\": 1", "\"revision\": 2", 1),
    )
    .unwrap();
    let (success, _, err) = kb(&["bid", "verify-receipt", "--bid", &p(&bid)], "", &[]);
    assert!(!success, "{err}");
    std::fs::write(bid.join("envelope.json"), env_text).unwrap();

    // Offline sealing against a parameters file, refusing a wrong hash.
    let params = d.join("params.json");
    std::fs::copy(bid.join("params.json"), &params).unwrap();
    let bid2 = d.join("bid2");
    let org = b.org_id.clone().unwrap();
    let wrong = seal_args(
        &bid2,
        &[
            "--params",
            &p(&params),
            "--params-hash",
            &"0".repeat(64),
            "--bidder",
            &org,
            "--supersedes",
            &p(&bid),
        ],
    );
    let (success, _, err) = kb(
        &wrong.iter().map(String::as_str).collect::<Vec<_>>(),
        "",
        &env,
    );
    assert!(!success && err.contains("refusing to seal"), "{err}");
    let hash = kaibiao::crypto::sha256_hex(&std::fs::read(&params).unwrap());
    let right = seal_args(
        &bid2,
        &[
            "--params",
            &p(&params),
            "--params-hash",
            &hash,
            "--bidder",
            &org,
            "--supersedes",
            &p(&bid),
        ],
    );
    let out = ok(kb(
        &right.iter().map(String::as_str).collect::<Vec<_>>(),
        "",
        &env,
    ));
    assert!(out.contains("sealed revision 2"), "{out}");
    ok(kb(
        &[
            "bid",
            "submit",
            "--no-wait",
            "--bid",
            &p(&bid2),
            "--session",
            &p(&session),
        ],
        "",
        &[],
    ));
    crate::bids::flush(&app).await;
    // Withdraw the standing revision.
    let out = ok(kb(
        &[
            "bid",
            "withdraw",
            "--no-wait",
            "--bid",
            &p(&bid2),
            "--keys",
            &p(&keys),
            "--session",
            &p(&session),
            "--passphrase-env",
            "BID_PASSPHRASE",
        ],
        "",
        &env,
    ));
    assert!(out.contains("withdrawn"), "{out}");
    crate::bids::flush(&app).await;
    ok(kb(
        &[
            "bid",
            "receipt",
            "--withdrawal",
            "--bid",
            &p(&bid2),
            "--session",
            &p(&session),
        ],
        "",
        &[],
    ));
    ok(kb(
        &[
            "bid",
            "verify-receipt",
            "--bid",
            &p(&bid2),
            "--receipt",
            &p(&bid2.join("withdrawal-receipt.json")),
        ],
        "",
        &[],
    ));
    app.stop().await;
}

#[actix_web::test]
async fn the_demo_runs_a_section_through_its_opening_and_verifies_its_transcript() {
    let dir = tempfile::tempdir().unwrap();
    let t = dir.path().join("t.json");
    let out = ok(kb(&["demo", "--transcript", &p(&t)], "", &[]));
    assert!(out.contains("DEMO PASSED"), "{out}");
    assert!(out.contains("refused"), "{out}");
    assert!(
        out.contains("唱标") && out.contains("78900000.00") && out.contains("countersigned"),
        "{out}"
    );
    let out = ok(kb(&["verify", &p(&t)], "", &[]));
    assert!(out.starts_with("VALID"), "{out}");
    assert!(
        out.contains("VALID: opening") && out.contains("3 bid(s) re-decrypted"),
        "{out}"
    );
    assert!(
        out.contains("VALID: evaluation — the seed mixed from the platform's and 3 committed value(s) (supervisor, centre:LS-GGZY, centre:YS-GGZY); a committee of 7")
            && out.contains("1 dissent(s)")
            && out.contains("awarded to org_"),
        "{out}"
    );
    // The centres' keys held to pins: here the auditor's pins are the
    // transcript's own fingerprints (the tests of the pins themselves are in
    // evaluation::transcript); one wrong or missing pin fails the check.
    let original: serde_json::Value = serde_json::from_slice(&std::fs::read(&t).unwrap()).unwrap();
    let pins: Vec<String> = original["evaluation"]["centres"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let raw = hex::decode(c["centre"]["public_key"].as_str().unwrap()).unwrap();
            format!(
                "--pin={}={}",
                c["centre"]["code"].as_str().unwrap(),
                kaibiao::crypto::sha256_hex(&raw)
            )
        })
        .collect();
    let mut args = vec!["verify", t.to_str().unwrap()];
    args.extend(pins.iter().map(String::as_str));
    let out = ok(kb(&args, "", &[]));
    assert!(
        out.contains("VALID: centres — 3 centre key(s) of the draw match the pins given"),
        "{out}"
    );
    let wrong = format!("{}{}", &pins[0][..pins[0].len() - 64], "0".repeat(64));
    let (success, _, err) = kb(&["verify", &p(&t), &wrong, &pins[1], &pins[2]], "", &[]);
    assert!(!success && err.contains("is not the pinned one"), "{err}");
    let (success, _, err) = kb(&["verify", &p(&t), &pins[1], &pins[2]], "", &[]);
    assert!(!success && err.contains("no pin was given"), "{err}");
    let (success, _, err) = kb(&["verify", &p(&t), "--pin=GZ-GGZY"], "", &[]);
    assert!(!success && err.contains("write CODE=FINGERPRINT"), "{err}");
    // Changing any hash, signature or time in it is caught.
    for (path, what) in [
        ("/manifest/root", "a hash"),
        ("/bids/0/signed_envelope/signature", "a signature"),
        ("/log/checkpoint/signature", "a signature"),
        ("/bids/1/completed_at_ms", "a time"),
        ("/manifest/sealed_at_ms", "a time"),
        ("/late_attempts/0/at_ms", "a time"),
        ("/opening/key_releases/0/signature", "a key release"),
        (
            "/opening/key_releases/1/release/secret_key",
            "a released key",
        ),
        ("/opening/bids/0/bmk", "a bid's key"),
        ("/opening/bids/2/summary_ciphertext", "a summary"),
        ("/opening/closing/closed_at_ms", "the closing"),
        (
            "/evaluation/centres/0/centre/signature",
            "a centre's registration",
        ),
        (
            "/evaluation/centres/1/registered/leaf/at_ms",
            "a centre's registration leaf",
        ),
    ] {
        let mut v = original.clone();
        let node = v.pointer_mut(path).unwrap_or_else(|| panic!("{path}"));
        *node = match node {
            serde_json::Value::String(s) => json!(format!(
                "{}{}",
                if s.starts_with('0') { "1" } else { "0" },
                &s[1..]
            )),
            serde_json::Value::Number(n) => json!(n.as_i64().unwrap() - 1),
            other => panic!("{other}"),
        };
        let bad = dir.path().join("bad.json");
        std::fs::write(&bad, serde_json::to_vec(&v).unwrap()).unwrap();
        let (success, _, err) = kb(&["verify", &p(&bad)], "", &[]);
        assert!(
            !success && err.contains("INVALID"),
            "changing {what} at {path} went unnoticed: {err}"
        );
    }
}

/// The benchmarks are run by hand at full size; here they run small, so
/// they keep working. (Their figures are not judged here: no timed tests.)
#[test]
fn the_benchmarks_run() {
    let dir = tempfile::tempdir().unwrap();
    let d = p(dir.path());
    let out = ok(kb(
        &["bench", "seal", "--size", "3MiB", "--dir", &d],
        "",
        &[],
    ));
    assert!(out.contains("kaibiao bid seal"), "{out}");
    let out = ok(kb(
        &[
            "bench", "ingest", "--size", "2MiB", "--runs", "1", "--dir", &d,
        ],
        "",
        &[],
    ));
    assert!(out.contains("median ratio to dd"), "{out}");
    let out = ok(kb(
        &[
            "bench", "submit", "--bids", "3", "--size", "1MiB", "--window", "30", "--dir", &d,
        ],
        "",
        &[],
    ));
    assert!(
        out.contains("3 of 3 accepted with verified promises"),
        "{out}"
    );
    let out = ok(kb(
        &[
            "bench", "decrypt", "--bids", "3", "--size", "2MiB", "--dir", &d,
        ],
        "",
        &[],
    ));
    assert!(
        out.contains("opening 3 bids") && out.contains("per core"),
        "{out}"
    );
    let out = ok(kb(
        &[
            "bench",
            "room",
            "--watchers",
            "20",
            "--events",
            "3",
            "--rate",
            "20",
            "--dir",
            &d,
        ],
        "",
        &[],
    ));
    // Every event reached every watcher, in both rounds.
    assert!(
        out.matches("60 of 60 deliveries, 0 resyncs").count() == 2,
        "{out}"
    );
    // The committee is brought to scoring through the platform itself.
    let out = ok(kb(
        &[
            "bench",
            "scores",
            "--experts",
            "5",
            "--bids",
            "2",
            "--items",
            "3",
            "--concurrency",
            "2",
            "--dir",
            &d,
        ],
        "",
        &[],
    ));
    assert!(out.contains("30 scores stored, none lost"), "{out}");
}

/// The opening from the command line: the host opens sign-in, a bidder who
/// sealed with its own key files signs in, decrypts its bid in the window,
/// objects, is answered, confirms after checking its own line; the host
/// closes and the supervisor countersigns with a key made by the CLI.
#[actix_web::test]
async fn the_opening_from_the_command_line() {
    let fx = Fixture::new()
        .mode("bidders")
        .prices(&[None, Some("5100000.00"), Some("5200000.00")])
        .at(Phase::Bidding)
        .await;
    let (app, s) = (&fx.app, fx.section.as_str());
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let env = [("KEY_PASS", "a long key passphrase")];
    let login = |who: &crate::world::Person, file: &Path| {
        ok(kb(
            &[
                "login",
                "--server",
                &app.base,
                "--username",
                &who.username,
                "--session",
                &p(file),
            ],
            &format!("{PASSWORD}\n"),
            &[],
        ));
    };
    let (bs, hs, ss) = (
        d.join("bidder.json"),
        d.join("host.json"),
        d.join("supervisor.json"),
    );
    login(&fx.w.bidders[0], &bs);
    login(&fx.w.host, &hs);
    login(&fx.w.supervisor, &ss);
    // Someone follows the room from a terminal: JSON lines, hello first.
    let mut watch = std::process::Command::new(crate::cli::binary())
        .args([
            "room",
            "watch",
            "--section",
            s,
            "--public",
            "--server",
            &app.base,
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(watch.stdout.take().unwrap()));
    let hello: serde_json::Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    let snapshot: serde_json::Value =
        serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(
        (hello["type"].as_str(), hello["view"].as_str()),
        (Some("hello"), Some("public"))
    );
    assert_eq!(snapshot["type"], "snapshot");
    let _ = watch.kill();
    let _ = watch.wait();
    let keys = d.join("keys");
    let with_pass = |mut a: Vec<String>| {
        a.extend(["--passphrase-env".into(), "KEY_PASS".into()]);
        ok(kb(
            &a.iter().map(String::as_str).collect::<Vec<_>>(),
            "",
            &env,
        ))
    };
    let args = |a: &[&str]| a.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    with_pass(args(&["bid", "keygen", "--dir", &p(&keys)]));
    with_pass(args(&[
        "bid",
        "register-keys",
        "--keys",
        &p(&keys),
        "--session",
        &p(&bs),
    ]));
    let summary = d.join("summary.json");
    std::fs::write(
        &summary,
        r#"{"price": "4990000.00", "duration_days": "365"}"#,
    )
    .unwrap();
    let docs = d.join("docs.zip");
    std::fs::write(&docs, vec![5u8; 300_000]).unwrap();
    let bid = d.join("bid");
    with_pass(args(&[
        "bid",
        "seal",
        "--section",
        s,
        "--keys",
        &p(&keys),
        "--summary",
        &p(&summary),
        "--documents",
        &p(&docs),
        "--session",
        &p(&bs),
        "--out",
        &p(&bid),
    ]));
    ok(kb(
        &[
            "bid",
            "submit",
            "--no-wait",
            "--bid",
            &p(&bid),
            "--session",
            &p(&bs),
        ],
        "",
        &[],
    ));

    // Sign-in before the deadline.
    let (signed_in, _, err) = kb(
        &["bid", "sign-in", "--section", s, "--session", &p(&bs)],
        "",
        &[],
    );
    assert!(
        !signed_in && err.contains("invalid_transition"),
        "not open yet: {err}"
    );
    ok(kb(
        &["host", "open-signin", "--section", s, "--session", &p(&hs)],
        "",
        &[],
    ));
    let out = ok(kb(
        &["bid", "sign-in", "--section", s, "--session", &p(&bs)],
        "",
        &[],
    ));
    assert!(out.contains("signed in"), "{out}");

    // The window: every bidder decrypts its own bid.
    fx.pass_deadline().await;
    fx.wait_phase("decrypting").await;
    for i in 1..3 {
        fx.bidder(i)
            .decrypt_own(fx.dirs[i].as_ref().unwrap(), &fx.keys[i].encryption)
            .await
            .unwrap();
    }
    let out = with_pass(args(&[
        "bid",
        "decrypt",
        "--bid",
        &p(&bid),
        "--keys",
        &p(&keys),
        "--session",
        &p(&bs),
    ]));
    assert!(out.contains("decrypted"), "{out}");
    fx.app.advance(chrono::Duration::minutes(31));
    fx.wait_phase("confirming").await;

    // An objection, answered; then the confirmation.
    let out = ok(kb(
        &[
            "bid",
            "object",
            "--section",
            s,
            "--text",
            "请核对工期",
            "--session",
            &p(&bs),
        ],
        "",
        &[],
    ));
    let objection = out.split_whitespace().nth(1).unwrap().to_string();
    let (confirmed, _, err) = bid_confirm(&keys, &bid, &bs, &env);
    assert!(!confirmed && err.contains("not been answered"), "{err}");
    ok(kb(
        &[
            "host",
            "answer",
            "--section",
            s,
            "--objection",
            &objection,
            "--text",
            "已核对：365 日历天",
            "--session",
            &p(&hs),
        ],
        "",
        &[],
    ));
    let (confirmed, out, err) = bid_confirm(&keys, &bid, &bs, &env);
    assert!(
        confirmed && out.contains("confirmed the opening record"),
        "{out}{err}"
    );

    // Closed by the host, countersigned by the supervisor's CLI key.
    ok(kb(
        &["host", "close", "--section", s, "--session", &p(&hs)],
        "",
        &[],
    ));
    let skeys = d.join("supervisor-keys");
    with_pass(args(&["supervisor", "keygen", "--dir", &p(&skeys)]));
    with_pass(args(&[
        "supervisor",
        "register-key",
        "--keys",
        &p(&skeys),
        "--session",
        &p(&ss),
    ]));
    with_pass(args(&[
        "supervisor",
        "countersign",
        "--section",
        s,
        "--keys",
        &p(&skeys),
        "--session",
        &p(&ss),
    ]));
    fx.wait_phase("evaluating").await;
    let r = fx.bidder(1).opening_record(s).await.unwrap();
    assert!(r["countersignature"].is_string(), "{r}");

    // The supervisor's value for the draw's seed, committed from the
    // command line with the countersigning key; a reveal before the draw
    // is asked for is refused and says why.
    let contribute = args(&[
        "supervisor",
        "contribute",
        "--section",
        s,
        "--keys",
        &p(&skeys),
        "--session",
        &p(&ss),
    ]);
    let out = with_pass(contribute.clone());
    assert!(out.contains("committed supervisor to a value"), "{out}");
    let view: serde_json::Value = fx
        .client(&fx.w.host)
        .get(&format!("/api/sections/{s}/evaluation/draw"))
        .await
        .unwrap();
    let shown = view["committed"][0]["commitment"].as_str().unwrap();
    assert!(out.trim_end().ends_with(shown), "{out} / {view}");
    let mut reveal = contribute.clone();
    reveal.extend(["--reveal", "--passphrase-env", "KEY_PASS"].map(String::from));
    let (revealed, _, err) = kb(
        &reveal.iter().map(String::as_str).collect::<Vec<_>>(),
        "",
        &env,
    );
    assert!(
        !revealed && err.contains("no draw has been asked for"),
        "{err}"
    );
    let mine = r["record"]["bids"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["bidder"] == fx.org(0).as_str())
        .unwrap()
        .clone();
    assert_eq!(mine["summary"]["price"], "4990000.00");
    fx.app.stop().await;
}

fn bid_confirm(
    keys: &Path,
    bid: &Path,
    session: &Path,
    env: &[(&str, &str)],
) -> (bool, String, String) {
    kb(
        &[
            "bid",
            "confirm",
            "--bid",
            &p(bid),
            "--keys",
            &p(keys),
            "--session",
            &p(session),
            "--passphrase-env",
            "KEY_PASS",
        ],
        "",
        env,
    )
}

/// A partner centre's side from the command line: its key, the public file
/// the host centre trusts, and a pass the host centre admits.
#[test]
fn a_centre_makes_its_key_exports_it_and_issues_passes() {
    use kaibiao::evaluation::pass::{self, Pass, Trust};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let key = d.join("centre.key");
    ok(kb(&["centre", "keygen", "--out", &p(&key)], "", &[]));
    let (success, _, err) = kb(&["centre", "keygen", "--out", &p(&key)], "", &[]);
    assert!(!success && err.contains("exists already"), "{err}");
    let trust = d.join("centres");
    std::fs::create_dir_all(&trust).unwrap();
    let (success, _, err) = kb(
        &[
            "centre",
            "export",
            "--key",
            &p(&key),
            "--code",
            "gz",
            "--name",
            "广州",
        ],
        "",
        &[],
    );
    assert!(!success && err.contains("--code"), "{err}");
    ok(kb(
        &[
            "centre",
            "export",
            "--key",
            &p(&key),
            "--code",
            "GZ-GGZY",
            "--name",
            "广州公共资源交易中心",
            "--out",
            &p(&trust.join("GZ-GGZY.json")),
        ],
        "",
        &[],
    ));
    // The file is the centre's registration, signed with its key.
    let file: kaibiao::evaluation::pass::Centre =
        serde_json::from_slice(&std::fs::read(trust.join("GZ-GGZY.json")).unwrap()).unwrap();
    assert_eq!(file.format, "kaibiao-centre/2");
    file.check().expect("signed by the centre's own key");
    let expert = kaibiao::crypto::sign::generate();
    let expert_hex = hex::encode(expert.verifying_key().as_bytes());
    let out = ok(kb(
        &[
            "centre",
            "issue-pass",
            "--key",
            &p(&key),
            "--code",
            "GZ-GGZY",
            "--expert",
            "GZ-0007",
            "--expert-key",
            &expert_hex,
            "--section",
            "sec_x",
            "--minutes",
            "60",
        ],
        "",
        &[],
    ));
    let pass: Pass = serde_json::from_str(&out).unwrap();
    let t = Trust::load_dir(&trust).unwrap();
    let now = pass.pass.issued_at_ms + 1;
    let body = pass::admit(&pass, &t, "sec_x", now).unwrap();
    assert_eq!(
        (body.expert_id.as_str(), body.expert_key.as_str()),
        ("GZ-0007", expert_hex.as_str())
    );
    assert_eq!(pass.pass.expires_at_ms - pass.pass.issued_at_ms, 3_600_000);
    assert!(pass::admit(&pass, &t, "sec_y", now).is_err());
    assert!(pass::admit(&pass, &Trust::default(), "sec_x", now).is_err());
    let (success, _, err) = kb(
        &[
            "centre",
            "issue-pass",
            "--key",
            &p(&key),
            "--code",
            "GZ-GGZY",
            "--expert",
            "GZ-0007",
            "--expert-key",
            &expert_hex,
            "--section",
            "sec_x",
            "--minutes",
            "721",
        ],
        "",
        &[],
    );
    assert!(!success && err.contains("--minutes"), "{err}");
}
