//! Projects and sections: drafting, publication rules, amendments,
//! cancellation, documents, registration and the public read side.

use serde_json::json;

use crate::helpers::{detail_fields, spawn, unique, TestStore};
use crate::world::World;

#[actix_web::test]
async fn a_published_section_is_public_with_exactly_hashed_parameters() {
    let store = TestStore::new();
    let app = spawn(&store).start().await;
    let w = World::build(&app).await;
    let s = w.ready(&app, 25).await;
    // Drafts are not public.
    app.get(&format!("/api/public/sections/{s}"), None)
        .await
        .expect_error(404, "not_found");
    let list = app.get("/api/public/sections", None).await.expect(200);
    assert_eq!(list["total"], 0);

    let published = app
        .post(
            &format!("/api/sections/{s}/publish"),
            Some(&w.host.token),
            json!({}),
        )
        .await
        .expect(200);
    assert_eq!(published["state"], "published");
    let hash = published["params_hash"].as_str().unwrap().to_string();

    let params = app
        .get(&format!("/api/public/sections/{s}/params"), None)
        .await;
    assert_eq!(params.status, 200);
    assert_eq!(
        kaibiao::crypto::sha256_hex(&params.body),
        hash,
        "params bytes hash to params_hash"
    );
    assert_eq!(
        params
            .headers
            .get("x-params-hash")
            .unwrap()
            .to_str()
            .unwrap(),
        hash
    );
    let p = params.json();
    assert_eq!(p["format"], "kaibiao-section-params/1");
    assert_eq!(p["threshold"], 3);
    assert_eq!(p["min_bidders"], 3);
    assert_eq!(p["ceiling_price"], "12000000.00");
    assert_eq!(
        p["platform_key"],
        app.get("/api/public/platform-key", None).await.expect(200)["public_key"]
    );
    // The bytes are canonical: re-canonicalising changes nothing.
    assert_eq!(kaibiao::crypto::jcs::canonicalize(&p).unwrap(), params.body);

    let public = app
        .get(&format!("/api/public/sections/{s}"), None)
        .await
        .expect(200);
    assert_eq!(public["custodian_count"], 5);
    assert!(
        public.get("custodians").is_none(),
        "custodian identities are not in the public view"
    );
    let doc = &public["documents"][0];
    let file = app
        .get(
            &format!(
                "/api/public/sections/{s}/documents/{}",
                doc["id"].as_str().unwrap()
            ),
            None,
        )
        .await;
    assert_eq!(file.status, 200);
    assert_eq!(file.body, b"%PDF-1.7 tender documents");
    assert_eq!(kaibiao::crypto::sha256_hex(&file.body), doc["sha256"]);
    assert!(file
        .headers
        .get("content-disposition")
        .unwrap()
        .to_str()
        .unwrap()
        .contains("filename*=UTF-8''"));

    let list = app.get("/api/public/sections", None).await.expect(200);
    assert_eq!(list["total"], 1);
    assert_eq!(list["items"][0]["id"], s);
    assert!(list["items"][0]["deadline_shanghai"]
        .as_str()
        .unwrap()
        .ends_with("+08:00"));

    // Events record the publication.
    let events = app
        .get(
            &format!("/api/sections/{s}/events"),
            Some(&w.supervisor.token),
        )
        .await
        .expect(200);
    assert!(events
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["kind"] == "section.published" && e["payload"]["params_hash"] == hash));
    app.stop().await;
}

#[actix_web::test]
async fn publication_lists_every_problem_and_changes_nothing() {
    let store = TestStore::new();
    let app = spawn(&store).start().await;
    let w = World::build(&app).await;
    let p = w.project(&app, "construction", true).await;
    let mut body = w.draft_body(&app, 10); // by law: at least 20 days
    body["evaluation"] = serde_json::Value::Null;
    let s = app
        .post(
            &format!("/api/projects/{p}/sections"),
            Some(&w.host.token),
            body,
        )
        .await
        .expect(201)["id"]
        .as_str()
        .unwrap()
        .to_string();
    // Only two custodians registered their keys; no documents; no evaluation; 10 days.
    let v = app
        .post(
            &format!("/api/sections/{s}/publish"),
            Some(&w.host.token),
            json!({}),
        )
        .await
        .expect_error(422, "validation_failed");
    let details = v["details"].as_array().unwrap();
    let fields = detail_fields(&v);
    for f in [
        "deadline",
        "custodians[0]",
        "custodians[4]",
        "evaluation",
        "documents",
    ] {
        assert!(fields.contains(&f), "{f} missing from {fields:?}");
    }
    let deadline_msg = details.iter().find(|d| d["field"] == "deadline").unwrap()["message"]
        .as_str()
        .unwrap();
    assert!(deadline_msg.contains("at least 20 days"), "{deadline_msg}");
    let section = app
        .get(&format!("/api/sections/{s}"), Some(&w.host.token))
        .await
        .expect(200);
    assert_eq!(section["state"], "draft");
    assert!(section["params_hash"].is_null());

    // Field-level problems are caught when the draft is written.
    let mut bad = w.draft_body(&app, 30);
    bad["threshold"] = json!(6);
    bad["window_minutes"] = json!(0);
    bad["ceiling_price"] = json!(12000000.5);
    let v = app
        .post(
            &format!("/api/projects/{p}/sections"),
            Some(&w.host.token),
            bad,
        )
        .await
        .expect_error(422, "validation_failed");
    assert!(
        v["details"][0]["message"]
            .as_str()
            .unwrap()
            .contains("decimal string"),
        "money must be a string: {v}"
    );
    let mut bad = w.draft_body(&app, 30);
    bad["threshold"] = json!(6);
    bad["window_minutes"] = json!(0);
    bad["custodians"] = json!([
        w.custodians[0].person.id,
        w.custodians[0].person.id,
        w.host.id
    ]);
    let v = app
        .post(
            &format!("/api/projects/{p}/sections"),
            Some(&w.host.token),
            bad,
        )
        .await
        .expect_error(422, "validation_failed");
    let fields = detail_fields(&v);
    for f in ["threshold", "window_minutes", "custodians[1]"] {
        assert!(fields.contains(&f), "{f} missing from {fields:?}");
    }
    let mut bad = w.draft_body(&app, 30);
    bad["custodians"] = json!([w.custodians[0].person.id, w.host.id, "usr_nobody"]);
    let v = app
        .post(
            &format!("/api/projects/{p}/sections"),
            Some(&w.host.token),
            bad,
        )
        .await
        .expect_error(422, "validation_failed");
    let fields = detail_fields(&v);
    assert_eq!(fields, ["custodians[1]", "custodians[2]"]);
    app.stop().await;
}

#[actix_web::test]
async fn the_minimum_days_follow_category_and_law() {
    let store = TestStore::new();
    let app = spawn(&store)
        .config(|c| c.rules.min_days_other = 5)
        .start()
        .await;
    let w = World::build(&app).await;
    // Land-use rights: the general minimum (5 days here) applies.
    for (category, by_law, days, ok) in [
        ("land_use", false, 6, true),
        ("land_use", false, 4, false),
        ("procurement", true, 19, false),
        ("procurement", false, 6, true),
    ] {
        let p = w.project(&app, category, by_law).await;
        let s = app
            .post(
                &format!("/api/projects/{p}/sections"),
                Some(&w.host.token),
                w.draft_body(&app, days),
            )
            .await
            .expect(201)["id"]
            .as_str()
            .unwrap()
            .to_string();
        w.register_section_keys(&app, &s).await;
        w.upload(&app, &s, "doc.pdf", b"%PDF").await;
        let r = app
            .post(
                &format!("/api/sections/{s}/publish"),
                Some(&w.host.token),
                json!({}),
            )
            .await;
        assert_eq!(
            r.status == 200,
            ok,
            "{category} by_law={by_law} days={days}: {}",
            r.text()
        );
    }
    app.stop().await;
}

#[actix_web::test]
async fn drafts_are_edited_in_place_and_published_sections_are_not() {
    let store = TestStore::new();
    let app = spawn(&store).start().await;
    let w = World::build(&app).await;
    let s = w.draft(&app, 30).await;
    w.register_section_keys(&app, &s).await;
    // Drop the last custodian: its section key goes with it.
    let mut body = w.draft_body(&app, 30);
    body["custodians"] = json!(w.custodian_ids()[..4]);
    body["threshold"] = json!(3);
    let v = app
        .request(
            "PUT",
            &format!("/api/sections/{s}"),
            Some(&w.host.token),
            Some(body),
        )
        .await
        .expect(200);
    assert_eq!(v["custodians"].as_array().unwrap().len(), 4);
    assert!(v["custodians"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["section_key"].is_string()));
    w.upload(&app, &s, "招标文件.pdf", b"%PDF").await;
    app.post(
        &format!("/api/sections/{s}/publish"),
        Some(&w.host.token),
        json!({}),
    )
    .await
    .expect(200);
    let r = app
        .request(
            "PUT",
            &format!("/api/sections/{s}"),
            Some(&w.host.token),
            Some(w.draft_body(&app, 40)),
        )
        .await;
    r.expect_error(409, "section_not_draft");
    let after = app
        .get(&format!("/api/sections/{s}"), Some(&w.host.token))
        .await
        .expect(200);
    assert_eq!(
        after["custodians"].as_array().unwrap().len(),
        4,
        "nothing changed"
    );
    // Published documents stay on the record.
    let doc = after["documents"][0]["id"].as_str().unwrap();
    app.request(
        "DELETE",
        &format!("/api/sections/{s}/documents/{doc}"),
        Some(&w.host.token),
        None,
    )
    .await
    .expect_error(409, "invalid_transition");
    app.stop().await;
}

#[actix_web::test]
async fn of_two_concurrent_publishes_exactly_one_wins() {
    let store = TestStore::new();
    let app = spawn(&store).start().await;
    let w = World::build(&app).await;
    for _ in 0..3 {
        let s = w.ready(&app, 30).await;
        let path = format!("/api/sections/{s}/publish");
        let (a, b, c) = tokio::join!(
            app.post(&path, Some(&w.host.token), json!({})),
            app.post(&path, Some(&w.host.token), json!({})),
            app.post(&path, Some(&w.host.token), json!({})),
        );
        let statuses = [a.status.as_u16(), b.status.as_u16(), c.status.as_u16()];
        assert_eq!(
            statuses.iter().filter(|s| **s == 200).count(),
            1,
            "{statuses:?}"
        );
        for r in [a, b, c] {
            if r.status != 200 {
                r.expect_error(409, "invalid_transition");
            }
        }
        let events = app
            .get(&format!("/api/sections/{s}/events"), Some(&w.host.token))
            .await
            .expect(200);
        let published = events
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["kind"] == "section.published")
            .count();
        assert_eq!(published, 1);
    }
    app.stop().await;
}

#[actix_web::test]
async fn hosts_act_only_on_their_own_centres_sections() {
    let store = TestStore::new();
    let app = spawn(&store).start().await;
    let w = World::build(&app).await;
    let draft = w.ready(&app, 30).await;
    // Another centre's host cannot see a draft at all…
    app.get(&format!("/api/sections/{draft}"), Some(&w.host_b.token))
        .await
        .expect_error(404, "not_found");
    app.post(
        &format!("/api/sections/{draft}/publish"),
        Some(&w.host_b.token),
        json!({}),
    )
    .await
    .expect_error(404, "not_found");
    // …and may not act on a published one.
    app.post(
        &format!("/api/sections/{draft}/publish"),
        Some(&w.host.token),
        json!({}),
    )
    .await
    .expect(200);
    app.post(
        &format!("/api/sections/{draft}/cancel"),
        Some(&w.host_b.token),
        json!({"reason": "不是我的"}),
    )
    .await
    .expect_error(403, "forbidden");
    app.post(
        &format!("/api/sections/{draft}/amendments"),
        Some(&w.host_b.token),
        json!({"kind": "clarification", "title": "澄清", "body": "…"}),
    )
    .await
    .expect_error(403, "forbidden");
    // An agent's host runs projects it is agent for, at the centre it names.
    let p = app
        .post(
            "/api/projects",
            Some(&w.agent_host.token),
            json!({"code": format!("A-{}", unique()), "name": "代理项目", "category": "procurement", "must_tender_by_law": true,
                   "centre_org_id": w.centre, "tenderer_org_id": w.tenderer_org, "regulator_org_id": w.regulator}),
        )
        .await
        .expect(201);
    assert_eq!(p["agent"]["id"], w.agent);
    assert_eq!(p["centre"]["id"], w.centre);
    // The centre's own host also runs it; the other centre's does not.
    let pid = p["id"].as_str().unwrap();
    app.get(&format!("/api/projects/{pid}"), Some(&w.host.token))
        .await
        .expect(200);
    app.get(&format!("/api/projects/{pid}"), Some(&w.host_b.token))
        .await
        .expect_error(404, "not_found");
    app.stop().await;
}

fn mail_count(app: &crate::helpers::TestApp, to: &str, containing: &str) -> usize {
    app.mails()
        .iter()
        .filter(|m| m.contains(&format!("To: {to}")) && m.contains(containing))
        .count()
}

#[actix_web::test]
async fn amendments_notify_registered_bidders_and_move_a_close_deadline() {
    let store = TestStore::new();
    let app = spawn(&store).start().await;
    let w = World::build(&app).await;
    let s = w.published(&app, 20).await;
    // Two of three bidders register; registration is idempotent.
    for b in &w.bidders[..2] {
        app.post(
            &format!("/api/sections/{s}/registration"),
            Some(&b.token),
            json!({}),
        )
        .await
        .expect(200);
        app.post(
            &format!("/api/sections/{s}/registration"),
            Some(&b.token),
            json!({}),
        )
        .await
        .expect(200);
    }
    let before = app
        .get(&format!("/api/sections/{s}"), Some(&w.host.token))
        .await
        .expect(200);
    let old_deadline = before["deadline"].as_str().unwrap().to_string();

    // Ten days before the deadline an amendment moves it to 15 days out.
    app.advance(chrono::Duration::days(10));
    let doc = w.upload(&app, &s, "补充文件.pdf", b"%PDF addendum").await;
    // Not public until an amendment publishes it.
    app.get(
        &format!(
            "/api/public/sections/{s}/documents/{}",
            doc["id"].as_str().unwrap()
        ),
        None,
    )
    .await
    .expect_error(404, "not_found");
    let a = app
        .post(
            &format!("/api/sections/{s}/amendments"),
            Some(&w.host.token),
            json!({"kind": "modification", "title": "关于工期要求的修改", "body": "工期调整为 300 日历天。", "documents": [doc["id"]]}),
        )
        .await
        .expect(201);
    assert_eq!(a["number"], 1);
    assert_eq!(a["old_deadline"], old_deadline);
    let expected = app.now().plus(chrono::Duration::days(15));
    assert_eq!(a["new_deadline"], expected.rfc3339());
    assert_ne!(a["params_hash"], before["params_hash"]);

    let public = app
        .get(&format!("/api/public/sections/{s}"), None)
        .await
        .expect(200);
    assert_eq!(public["params_version"], 2);
    assert_eq!(public["deadline"], expected.rfc3339());
    assert_eq!(public["documents"].as_array().unwrap().len(), 2);
    assert_eq!(public["amendments"][0]["title"], "关于工期要求的修改");
    let params = app
        .get(&format!("/api/public/sections/{s}/params"), None)
        .await
        .expect(200);
    assert_eq!(params["params_version"], 2);
    assert_eq!(params["deadline_ms"], expected.millis());

    for b in &w.bidders[..2] {
        let mail = app.wait_for_mail(&b.email, "第 1 号").await;
        assert!(
            mail.contains("顺延"),
            "the mail says the deadline moved: {mail}"
        );
    }
    assert_eq!(
        mail_count(&app, &w.bidders[2].email, "第 1 号"),
        0,
        "unregistered bidders are not mailed"
    );

    // A deadline never moves earlier.
    app.post(
        &format!("/api/sections/{s}/amendments"),
        Some(&w.host.token),
        json!({"kind": "clarification", "title": "澄清", "body": "…", "deadline": app.now().plus(chrono::Duration::days(16)).rfc3339()}),
    )
    .await
    .expect(201);
    app.post(
        &format!("/api/sections/{s}/amendments"),
        Some(&w.host.token),
        json!({"kind": "clarification", "title": "澄清二", "body": "…", "deadline": app.now().plus(chrono::Duration::days(2)).rfc3339()}),
    )
    .await
    .expect_error(422, "validation_failed");
    let amendments = app
        .get(&format!("/api/public/sections/{s}"), None)
        .await
        .expect(200)["amendments"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(amendments, 2, "the refused amendment left nothing behind");
    app.stop().await;
}

#[actix_web::test]
async fn cancellation_records_the_reason_notifies_and_stops_the_schedule() {
    let store = TestStore::new();
    let app = spawn(&store).start().await;
    let w = World::build(&app).await;
    let s = w.published(&app, 21).await;
    app.post(
        &format!("/api/sections/{s}/registration"),
        Some(&w.bidders[0].token),
        json!({}),
    )
    .await
    .expect(200);
    app.post(
        &format!("/api/sections/{s}/cancel"),
        Some(&w.host.token),
        json!({"reason": ""}),
    )
    .await
    .expect_error(422, "validation_failed");
    let v = app
        .post(
            &format!("/api/sections/{s}/cancel"),
            Some(&w.host.token),
            json!({"reason": "招标人项目计划调整"}),
        )
        .await
        .expect(200);
    assert_eq!(v["state"], "cancelled");
    app.wait_for_mail(&w.bidders[0].email, "招标人项目计划调整")
        .await;
    let public = app
        .get(&format!("/api/public/sections/{s}"), None)
        .await
        .expect(200);
    assert_eq!(public["cancel_reason"], "招标人项目计划调整");
    // Past the old deadline nothing happens, and it cannot be cancelled twice.
    app.advance(chrono::Duration::days(22));
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(
        app.get(&format!("/api/public/sections/{s}"), None)
            .await
            .expect(200)["state"],
        "cancelled"
    );
    let e = app
        .post(
            &format!("/api/sections/{s}/cancel"),
            Some(&w.host.token),
            json!({"reason": "再次终止"}),
        )
        .await
        .expect_error(409, "invalid_transition");
    assert_eq!(
        e["message"], "a section cannot go from cancelled to cancelled",
        "the state machine refuses it, before the database is asked"
    );
    app.stop().await;
}

#[actix_web::test]
async fn documents_are_streamed_with_limits_and_only_by_the_host() {
    let store = TestStore::new();
    let app = spawn(&store)
        .config(|c| c.server.max_document_bytes = 4096)
        .start()
        .await;
    let w = World::build(&app).await;
    let s = w.draft(&app, 30).await;
    let path = format!("/api/sections/{s}/documents?name=big.pdf");
    app.raw(
        "POST",
        &path,
        Some(&w.host.token),
        "application/pdf",
        vec![7u8; 5000],
    )
    .await
    .expect_error(413, "payload_too_large");
    app.raw(
        "POST",
        &path,
        Some(&w.bidders[0].token),
        "application/pdf",
        vec![7u8; 10],
    )
    .await
    .expect_error(403, "forbidden");
    app.raw(
        "POST",
        &format!("/api/sections/{s}/documents?name=..%2Fetc"),
        Some(&w.host.token),
        "application/pdf",
        vec![1],
    )
    .await
    .expect_error(422, "validation_failed");
    app.raw(
        "POST",
        &format!("/api/sections/{s}/documents?name=empty.pdf"),
        Some(&w.host.token),
        "application/pdf",
        vec![],
    )
    .await
    .expect_error(422, "validation_failed");
    let section = app
        .get(&format!("/api/sections/{s}"), Some(&w.host.token))
        .await
        .expect(200);
    assert_eq!(
        section["documents"].as_array().unwrap().len(),
        0,
        "refused uploads leave no record"
    );
    let blobs = std::fs::read_dir(app.data_dir.join("blobs/tmp"))
        .unwrap()
        .count();
    assert_eq!(blobs, 0, "and no temporary files");
    let d = w.upload(&app, &s, "ok.pdf", &[9u8; 4096]).await;
    assert_eq!(d["size"], 4096);
    // The host may delete a draft's document; the file is served to viewers.
    let got = app
        .get(
            &format!("/api/sections/{s}/documents/{}", d["id"].as_str().unwrap()),
            Some(&w.supervisor.token),
        )
        .await;
    assert_eq!(got.body.len(), 4096);
    app.request(
        "DELETE",
        &format!("/api/sections/{s}/documents/{}", d["id"].as_str().unwrap()),
        Some(&w.host.token),
        None,
    )
    .await
    .expect(204);
    app.stop().await;
}

#[actix_web::test]
async fn registration_closes_at_the_deadline_to_the_millisecond() {
    let store = TestStore::new();
    let app = spawn(&store).start().await;
    let w = World::build(&app).await;
    let s = w.published(&app, 20).await;
    let deadline = kaibiao::domain::time::Timestamp::parse_rfc3339(
        app.get(&format!("/api/public/sections/{s}"), None)
            .await
            .expect(200)["deadline"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    app.fixed_clock()
        .set(deadline.minus(chrono::Duration::milliseconds(1)));
    app.post(
        &format!("/api/sections/{s}/registration"),
        Some(&w.bidders[0].token),
        json!({}),
    )
    .await
    .expect(200);
    app.fixed_clock().set(deadline);
    app.post(
        &format!("/api/sections/{s}/registration"),
        Some(&w.bidders[1].token),
        json!({}),
    )
    .await
    .expect_error(409, "invalid_transition");
    app.stop().await;
}

#[actix_web::test]
async fn public_search_filters_by_text_category_and_state() {
    let store = TestStore::new();
    let app = spawn(&store)
        .config(|c| c.rules.min_days_other = 1)
        .start()
        .await;
    let w = World::build(&app).await;
    let s1 = w.published(&app, 25).await;
    let p = w.project(&app, "land_use", false).await;
    let mut body = w.draft_body(&app, 3);
    body["name"] = json!("地块 50%_出让");
    let s2 = w.publish_body(&app, &p, body).await;

    let by_cat = app
        .get("/api/public/sections?category=land_use", None)
        .await
        .expect(200);
    assert_eq!(by_cat["total"], 1);
    assert_eq!(by_cat["items"][0]["id"], s2);
    let by_text = app
        .get("/api/public/sections?q=50%25_", None)
        .await
        .expect(200);
    assert_eq!(by_text["total"], 1, "% and _ match literally");
    let by_text = app
        .get("/api/public/sections?q=%E5%9C%9F%E5%BB%BA", None)
        .await
        .expect(200); // 土建
    assert_eq!(by_text["items"][0]["id"], s1);
    let paged = app
        .get("/api/public/sections?per_page=1&page=2", None)
        .await
        .expect(200);
    assert_eq!(paged["total"], 2);
    assert_eq!(paged["items"].as_array().unwrap().len(), 1);
    app.get("/api/public/sections?state=draft", None)
        .await
        .expect_error(422, "validation_failed");
    app.get("/api/public/sections?category=fishing", None)
        .await
        .expect_error(400, "bad_request");
    app.stop().await;
}
