//! Before the opening nobody learns a bid's contents — and before the
//! deadline nobody learns which or how many bidders have bid: not through
//! any endpoint, the logs, the metrics, the log of events, or the database.

use kaibiao::db::Backend;
use serde_json::json;

use crate::helpers::{captured_logs, spawn, TestApp, TestStore};
use crate::world::{seal, World};

const PRICE: &str = "98765432.17";
const QUALITY: &str = "绝密质量标准XYZZY";

/// Every row of every table, as text.
async fn database_text(app: &TestApp, store: &TestStore) -> String {
    match app.db.backend() {
        Backend::Sqlite => {
            let mut all = Vec::new();
            for f in ["kaibiao.sqlite3", "kaibiao.sqlite3-wal"] {
                if let Ok(b) = std::fs::read(store.data_dir().join(f)) {
                    all.extend(b);
                }
            }
            String::from_utf8_lossy(&all).into_owned()
        }
        Backend::Postgres => {
            let db = app.db.clone();
            tokio::task::spawn_blocking(move || {
                use diesel::prelude::*;
                #[derive(QueryableByName)]
                struct Row {
                    #[diesel(sql_type = diesel::sql_types::Text)]
                    t: String,
                }
                let mut c = db.get_blocking().unwrap();
                let tables: Vec<Row> = diesel::sql_query(
                    "SELECT table_name::text AS t FROM information_schema.tables WHERE table_schema = current_schema()",
                )
                .load(&mut **c)
                .unwrap();
                let mut out = String::new();
                for table in tables {
                    let rows: Vec<Row> = diesel::sql_query(format!("SELECT row_to_json(x)::text AS t FROM \"{}\" x", table.t))
                        .load(&mut **c)
                        .unwrap();
                    for r in rows {
                        out.push_str(&r.t);
                        out.push('\n');
                    }
                }
                out
            })
            .await
            .unwrap()
        }
    }
}

fn files_text(dir: &std::path::Path) -> String {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(d).unwrap().flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            } else {
                out.extend(std::fs::read(e.path()).unwrap_or_default());
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn views(app: &TestApp, w: &World, s: &str) -> Vec<serde_json::Value> {
    let mut v = Vec::new();
    for (path, token) in [
        (format!("/api/sections/{s}"), Some(&w.host.token)),
        (format!("/api/sections/{s}/events"), Some(&w.host.token)),
        (format!("/api/sections/{s}"), Some(&w.supervisor.token)),
        (
            format!("/api/sections/{s}/events"),
            Some(&w.supervisor.token),
        ),
        (format!("/api/sections/{s}"), Some(&w.tenderer.token)),
        (format!("/api/public/sections/{s}"), None),
        (format!("/api/public/sections/{s}/params"), None),
        ("/api/public/sections".to_string(), None),
    ] {
        v.push(app.get(&path, token.map(|t| t.as_str())).await.expect(200));
    }
    v
}

#[actix_web::test]
async fn a_known_price_appears_nowhere_and_nobody_learns_who_or_how_many_have_bid() {
    let store = TestStore::new();
    let app = spawn(&store).start().await;
    let w = World::build(&app).await;
    let s = w.published(&app, 20).await;
    let root = tempfile::tempdir().unwrap();
    let org0 = w.bidders[0].org_id.clone().unwrap();
    let org1 = w.bidders[1].org_id.clone().unwrap();

    // What the host, tenderer, supervisor and the public see before any bid.
    let before = views(&app, &w, &s).await;
    let log_leaves_before = app.get("/api/log/checkpoint", None).await.expect(200)["checkpoint"]
        ["size"]
        .as_u64()
        .unwrap();

    // Two bidders register and bid; one with the known price and words.
    let k0 = w.bidder_keys(&app, 0).await;
    let k1 = w.bidder_keys(&app, 1).await;
    app.post(
        &format!("/api/sections/{s}/registration"),
        Some(&w.bidders[0].token),
        json!({}),
    )
    .await
    .expect(200);
    let client = w.client(&app, &w.bidders[0]);
    let (_, hash, params) = client.params(&s).await.unwrap();
    let docs = root.path().join("docs");
    std::fs::write(
        &docs,
        format!("技术标 price {PRICE} quality {QUALITY}").repeat(1000),
    )
    .unwrap();
    let dir = root.path().join("bid0");
    kaibiao::client::seal_to_dir(
        kaibiao::client::SealRequest {
            params_json: &params,
            params_hash: &hash,
            bidder: &org0,
            signing: &k0.signing,
            encryption_public: k0.encryption.public_key(),
            fields: [
                ("price".to_string(), PRICE.to_string()),
                ("quality".to_string(), QUALITY.to_string()),
            ]
            .into(),
            documents: &docs,
            supersedes: None,
            now_ms: app.now().millis(),
        },
        &dir,
        &mut |_| {},
    )
    .unwrap();
    let receipt = client.submit(&dir, &mut |_, _| {}).await.unwrap();
    let (d1, _) = seal(
        &app,
        root.path(),
        &w.bidders[1],
        &k1,
        &s,
        "1234.00",
        b"other",
        None,
    )
    .await;
    w.client(&app, &w.bidders[1])
        .submit(&d1, &mut |_, _| {})
        .await
        .unwrap();

    // Nothing any other party can see changed: not the sections, not their
    // events, not the public pages.
    assert_eq!(
        views(&app, &w, &s).await,
        before,
        "the views of the section changed because of submissions"
    );
    // The log grew by commitments (after the flush, ADR 9) and the two
    // bidders' key registrations (PROTOCOL §2.1) only, naming no section
    // and no bidder.
    crate::bids::flush(&app).await;
    let size = app.get("/api/log/checkpoint", None).await.expect(200)["checkpoint"]["size"]
        .as_u64()
        .unwrap();
    let entries = app
        .get(
            &format!("/api/log/entries?start={log_leaves_before}&end={size}"),
            None,
        )
        .await
        .expect(200);
    for e in entries.as_array().unwrap() {
        let ty = e["leaf"]["type"].as_str().unwrap();
        assert!(ty == "commitment" || ty == "key.registered", "{e}");
        let text = e.to_string();
        assert!(
            !text.contains(&s) && !text.contains(&org0) && !text.contains(&org1),
            "{text}"
        );
    }

    // Every response anyone gets, the bidder's own included, lacks the price.
    let mut responses = before.iter().map(|v| v.to_string()).collect::<Vec<_>>();
    responses.push(serde_json::to_string(&receipt).unwrap());
    responses.push(app.get("/api/bids", Some(&w.bidders[0].token)).await.text());
    responses.push(
        app.get(
            &format!("/api/bids/{}", receipt.receipt.envelope_hash),
            Some(&w.bidders[0].token),
        )
        .await
        .text(),
    );
    responses.push(
        app.get(&format!("/api/log/entries?start=0&end={size}"), None)
            .await
            .text(),
    );
    responses.push(app.scrape().await);
    responses.push(
        app.get(
            &format!("/api/sections/{s}/audit"),
            Some(&w.supervisor.token),
        )
        .await
        .text(),
    );
    // The audit trail does not say who bid where.
    let audit = app
        .get(&format!("/api/sections/{s}/audit"), Some(&w.host.token))
        .await
        .expect(200);
    assert!(!audit.to_string().contains(&w.bidders[0].id), "{audit}");

    // The database holds no price, no words of the bid, and before the
    // deadline no submission or registration row names a section or bidder.
    let db = database_text(&app, &store).await;
    let blobs = files_text(&app.data_dir.join("blobs"));
    let logs = captured_logs();
    for (name, text) in [
        ("responses", responses.join("\n")),
        ("database", db.clone()),
        ("stored files", blobs),
        ("logs", logs.clone()),
    ] {
        assert!(!text.contains(PRICE), "the price appears in the {name}");
        assert!(
            !text.contains(QUALITY),
            "the bid's words appear in the {name}"
        );
    }
    assert!(
        !logs.contains(&w.bidders[0].token),
        "a session token reached the logs"
    );
    let db_rows = crate::helpers::rows_of(&app, "submissions").await
        + &crate::helpers::rows_of(&app, "section_registrations").await;
    assert!(!db_rows.is_empty());
    for secret in [
        s.as_str(),
        org0.as_str(),
        org1.as_str(),
        w.bidders[0].id.as_str(),
    ] {
        assert!(
            !db_rows.contains(secret),
            "{secret} is readable in the pre-deadline tables:\n{db_rows}"
        );
    }

    // After the deadline the record opens — but the bids stay encrypted
    // until the opening.
    app.fixed_clock()
        .set(kaibiao::domain::time::Timestamp::from_millis(
            receipt.receipt.deadline_ms,
        ));
    app.eventually("sealed", || async {
        app.get(&format!("/api/public/sections/{s}/manifest"), None)
            .await
            .status
            == 200
    })
    .await;
    let after = app
        .get(&format!("/api/public/sections/{s}/transcript"), None)
        .await
        .text();
    assert!(
        after.contains(&org0),
        "after the deadline the record names the bidders"
    );
    assert!(!after.contains(PRICE) && !database_text(&app, &store).await.contains(PRICE));
    app.stop().await;
}

/// Request counts can tell who is active before a deadline: `/metrics` is
/// the operator's. On the main listener only its token opens it — never the
/// caller's address, since behind a reverse proxy on the same host every
/// request comes from loopback — and the separate metrics listener serves
/// nothing else.
#[actix_web::test]
async fn metrics_are_for_the_operator_only() {
    let store = TestStore::new();
    let app = spawn(&store)
        .config(|c| c.server.metrics_token = "operator-secret-123".into())
        .start()
        .await;
    // This request comes from loopback, as a local reverse proxy's would.
    app.get("/metrics", None)
        .await
        .expect_error(401, "unauthenticated");
    app.get("/metrics", Some("wrong"))
        .await
        .expect_error(401, "unauthenticated");
    let m = app.get("/metrics", Some("operator-secret-123")).await;
    assert_eq!(m.status, 200);
    assert!(m.text().contains("kaibiao_http_requests_total"));
    // The metrics listener answers /metrics and nothing else.
    assert!(app.scrape().await.contains("kaibiao_http_requests_total"));
    let base = app.metrics_base.clone().unwrap();
    let mut other = app
        .client
        .get(format!("{base}/api/public/sections"))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 404);
    let body: serde_json::Value = other.json().await.unwrap();
    assert_eq!(body["error"], "route_not_found");
    app.stop().await;

    // Without a token, the main listener does not serve metrics at all.
    let store = TestStore::new();
    let app = spawn(&store).start().await;
    app.get("/metrics", None)
        .await
        .expect_error(401, "unauthenticated");
    app.stop().await;
}

/// One platform's public log before the deadline of its only section, with
/// `bids` bidders bidding (the last of them also withdrawing if more than
/// one), and the transcript after it.
async fn public_log_with(bids: usize) -> (Vec<serde_json::Value>, kaibiao::transcript::Summary) {
    use kaibiao::domain::identity::{OrgKind, Role};
    let store = TestStore::new();
    let app = spawn(&store).start().await;
    let mut w = World::build(&app).await;
    for i in w.bidders.len()..5 {
        let o = crate::world::org(&app, OrgKind::Bidder, &format!("投标企业{i}有限公司")).await;
        w.bidders
            .push(crate::world::person(&app, Some(&o), Role::Bidder, &format!("bidder{i}")).await);
    }
    let mut keys = Vec::new();
    for i in 0..w.bidders.len() {
        keys.push(w.bidder_keys(&app, i).await);
    }
    let s = w.published(&app, 20).await;
    // The flush that publication makes due, settled before anyone bids
    // (the chronograph may be running it too; it runs once).
    let settle = || async {
        kaibiao::service::bids::flush_due(app.services())
            .await
            .unwrap()
    };
    settle().await;
    let root = tempfile::tempdir().unwrap();
    for (i, key) in keys.iter().enumerate().take(bids) {
        let (dir, _) = seal(
            &app,
            root.path(),
            &w.bidders[i],
            key,
            &s,
            "1000.00",
            b"d",
            None,
        )
        .await;
        let client = w.client(&app, &w.bidders[i]);
        let promise = client.submit(&dir, &mut |_, _| {}).await.unwrap();
        assert_eq!(promise.receipt.format, "kaibiao-receipt-promise/1");
        if bids > 1 && i == bids - 1 {
            client
                .withdraw(&dir, &key.signing, app.now().millis())
                .await
                .unwrap();
        }
    }
    // The next scheduled flush, a minute on.
    app.advance(chrono::Duration::seconds(61));
    settle().await;
    let entries = app.log_entries().await;
    // After the deadline: the bids are all there, and the transcript verifies.
    app.advance(chrono::Duration::days(21));
    crate::bids::sealed(&app, &s).await;
    let tr = crate::bids::transcript(&app, &s).await;
    let summary = kaibiao::transcript::verify(&tr).unwrap();
    app.stop().await;
    (entries, summary)
}

/// ADR 9: before the deadline, the public log is the same whether the only
/// open section has one bid or five and a withdrawal — as many leaves, of
/// the same types at the same times, and the commitments among them
/// indistinguishable in form (real ones and cover leaves alike).
#[actix_web::test]
async fn the_public_log_before_the_deadline_is_the_same_with_one_bid_or_five() {
    let (one, one_summary) = public_log_with(1).await;
    let (five, five_summary) = public_log_with(5).await;
    assert_eq!(one_summary.accepted, 1, "{one_summary:?}");
    assert_eq!(five_summary.accepted, 4, "{five_summary:?}");
    let shape = |e: &serde_json::Value| {
        let leaf = &e["leaf"];
        (
            e["index"].clone(),
            leaf["type"].clone(),
            leaf["at_ms"].clone(),
            leaf.as_object()
                .unwrap()
                .keys()
                .cloned()
                .collect::<Vec<_>>(),
        )
    };
    assert_eq!(one.len(), five.len(), "the log's size tells the count");
    let commitments = one
        .iter()
        .filter(|e| e["leaf"]["type"] == "commitment")
        .count();
    assert!(commitments >= 16, "{commitments} commitment leaves");
    for (a, b) in one.iter().zip(&five) {
        assert_eq!(shape(a), shape(b), "the log differs:\n{a}\n{b}");
        if a["leaf"]["type"] == "commitment" {
            for e in [a, b] {
                for k in ["commitment", "chain"] {
                    let v = e["leaf"][k].as_str().unwrap();
                    assert!(
                        v.len() == 64 && v.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')),
                        "{e}"
                    );
                }
            }
        }
    }
}
