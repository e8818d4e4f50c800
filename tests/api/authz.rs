//! Every route × every role: who may act, who is refused. The table must
//! name every route in the route table, so a new endpoint cannot ship
//! without its authorisation decision being written down and tested.

use serde_json::{json, Value};

use crate::helpers::{credit_code, spawn, unique, TestApp, TestStore, PASSWORD};
use crate::world::{login, Person, World};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum R {
    Anon,
    Admin,
    Host,
    HostB,
    Tenderer,
    Supervisor,
    SupervisorB,
    Custodian,
    Expert,
    Bidder,
}

const ALL: [R; 10] = [
    R::Anon,
    R::Admin,
    R::Host,
    R::HostB,
    R::Tenderer,
    R::Supervisor,
    R::SupervisorB,
    R::Custodian,
    R::Expert,
    R::Bidder,
];
const SIGNED_IN: [R; 9] = [
    R::Admin,
    R::Host,
    R::HostB,
    R::Tenderer,
    R::Supervisor,
    R::SupervisorB,
    R::Custodian,
    R::Expert,
    R::Bidder,
];
const VIEWERS: [R; 4] = [R::Host, R::Tenderer, R::Supervisor, R::Custodian];
/// Operator endpoints: open to no session at all.
const OPERATOR: [R; 0] = [];

/// What a row acts on.
#[derive(Clone, Copy)]
enum Target {
    Nothing,
    /// The shared draft (read-only rows).
    Draft,
    /// The shared published section (read-only rows).
    Published,
    /// A fresh ready-to-publish draft per role.
    FreshDraft,
    /// A fresh published section per role.
    FreshPublished,
    /// A throwaway user per role (admin rows).
    User,
    /// A sealed section (manifest and transcript exist).
    Sealed,
    /// The bidder's own submission to the shared published section.
    Bid,
}

struct Row {
    method: &'static str,
    pattern: &'static str,
    allowed: &'static [R],
    target: Target,
    body: Option<Value>,
}

fn row(
    method: &'static str,
    pattern: &'static str,
    allowed: &'static [R],
    target: Target,
    body: Option<Value>,
) -> Row {
    Row {
        method,
        pattern,
        allowed,
        target,
        body,
    }
}

fn table(w: &World) -> Vec<Row> {
    use Target::*;
    let draft = |w: &World| json!({"code": format!("S-{}", unique()), "name": "标段", "custodians": w.custodian_ids()});
    vec![
        row("GET", "/", &ALL, Nothing, None),
        row("GET", "/static/{file}", &ALL, Nothing, None),
        row("GET", "/room", &ALL, Nothing, None),
        row("GET", "/healthz", &ALL, Nothing, None),
        // The operator's: no session opens it, only the metrics token.
        row("GET", "/metrics", &OPERATOR, Nothing, None),
        row("GET", "/api/openapi.json", &ALL, Nothing, None),
        row(
            "POST",
            "/api/auth/register",
            &ALL,
            Nothing,
            Some(json!({"company_name": "X公司", "credit_code": "bad"})),
        ),
        row(
            "POST",
            "/api/auth/login",
            &ALL,
            Nothing,
            Some(json!({"username": "nobody", "password": "wrong password"})),
        ),
        row(
            "POST",
            "/api/auth/logout",
            &SIGNED_IN,
            Nothing,
            Some(json!({})),
        ),
        row(
            "POST",
            "/api/auth/session",
            &ALL,
            Nothing,
            Some(json!({"username": "nobody", "password": "wrong password"})),
        ),
        row("DELETE", "/api/auth/session", &SIGNED_IN, Nothing, None),
        row("GET", "/api/auth/me", &SIGNED_IN, Nothing, None),
        row(
            "POST",
            "/api/auth/verify-email",
            &ALL,
            Nothing,
            Some(json!({"token": "kbv_nope"})),
        ),
        row(
            "POST",
            "/api/auth/resend-verification",
            &ALL,
            Nothing,
            Some(json!({"username": "nobody"})),
        ),
        row(
            "GET",
            "/api/admin/organisations",
            &[R::Admin],
            Nothing,
            None,
        ),
        row(
            "POST",
            "/api/admin/organisations",
            &[R::Admin],
            Nothing,
            Some(json!({"kind": "tenderer", "name": "新招标人", "credit_code": "to-be-replaced"})),
        ),
        row("GET", "/api/admin/users", &[R::Admin], Nothing, None),
        row(
            "POST",
            "/api/admin/users",
            &[R::Admin],
            Nothing,
            Some(
                json!({"org_id": w.centre, "role": "host", "username": "to-be-replaced", "email": "n@example.cn", "display_name": "N", "password": PASSWORD}),
            ),
        ),
        row(
            "POST",
            "/api/admin/users/{id}/disable",
            &[R::Admin],
            User,
            Some(json!({})),
        ),
        row(
            "POST",
            "/api/admin/users/{id}/enable",
            &[R::Admin],
            User,
            Some(json!({})),
        ),
        row(
            "POST",
            "/api/admin/users/{id}/revoke-sessions",
            &[R::Admin],
            User,
            Some(json!({})),
        ),
        row(
            "POST",
            "/api/keys/challenges",
            &[R::Bidder],
            Nothing,
            Some(json!({"purpose": "bidder_signing"})),
        ),
        row(
            "POST",
            "/api/keys",
            &SIGNED_IN,
            Nothing,
            Some(json!({"challenge_id": "chl_x", "public_key": "00", "proof": "00"})),
        ),
        row("GET", "/api/keys", &SIGNED_IN, Nothing, None),
        row(
            "GET",
            "/api/projects",
            &[
                R::Host,
                R::HostB,
                R::Tenderer,
                R::Supervisor,
                R::SupervisorB,
            ],
            Nothing,
            None,
        ),
        row(
            "POST",
            "/api/projects",
            &[R::Host, R::HostB],
            Nothing,
            Some(
                json!({"code": "to-be-replaced", "name": "新项目", "category": "construction", "must_tender_by_law": true,
                        "tenderer_org_id": w.tenderer_org, "regulator_org_id": w.regulator}),
            ),
        ),
        row(
            "GET",
            "/api/projects/{id}",
            &[R::Host, R::Tenderer, R::Supervisor],
            Draft,
            None,
        ),
        row(
            "POST",
            "/api/projects/{id}/sections",
            &[R::Host],
            Draft,
            Some(draft(w)),
        ),
        row("GET", "/api/sections/{id}", &VIEWERS, Draft, None),
        row(
            "PUT",
            "/api/sections/{id}",
            &[R::Host],
            FreshDraft,
            Some(draft(w)),
        ),
        row(
            "POST",
            "/api/sections/{id}/publish",
            &[R::Host],
            FreshDraft,
            Some(json!({})),
        ),
        row(
            "POST",
            "/api/sections/{id}/amendments",
            &[R::Host],
            FreshPublished,
            Some(json!({"kind": "clarification", "title": "澄清一", "body": "答疑"})),
        ),
        row(
            "POST",
            "/api/sections/{id}/cancel",
            &[R::Host],
            FreshPublished,
            Some(json!({"reason": "计划调整"})),
        ),
        row(
            "POST",
            "/api/sections/{id}/documents",
            &[R::Host],
            FreshDraft,
            None,
        ),
        row(
            "GET",
            "/api/sections/{id}/documents/{doc}",
            &VIEWERS,
            Draft,
            None,
        ),
        row(
            "DELETE",
            "/api/sections/{id}/documents/{doc}",
            &[R::Host],
            FreshDraft,
            None,
        ),
        row(
            "POST",
            "/api/sections/{id}/custodian-key",
            &[R::Custodian],
            FreshDraft,
            Some(json!({"public_key": "00", "signature": "00"})),
        ),
        row(
            "POST",
            "/api/sections/{id}/registration",
            &[R::Bidder],
            Published,
            Some(json!({})),
        ),
        row(
            "GET",
            "/api/sections/{id}/events",
            &VIEWERS,
            Published,
            None,
        ),
        row(
            "GET",
            "/api/sections/{id}/audit",
            &[R::Host, R::Supervisor],
            Published,
            None,
        ),
        row("GET", "/api/public/sections", &ALL, Nothing, None),
        row("GET", "/api/public/sections/{id}", &ALL, Published, None),
        row(
            "GET",
            "/api/public/sections/{id}/params",
            &ALL,
            Published,
            None,
        ),
        row(
            "GET",
            "/api/public/sections/{id}/documents/{doc}",
            &ALL,
            Published,
            None,
        ),
        row("GET", "/api/public/platform-key", &ALL, Nothing, None),
        row(
            "GET",
            "/api/public/sections/{id}/manifest",
            &ALL,
            Sealed,
            None,
        ),
        row(
            "GET",
            "/api/public/sections/{id}/manifest/proof",
            &ALL,
            Sealed,
            None,
        ),
        row(
            "GET",
            "/api/public/sections/{id}/transcript",
            &ALL,
            Sealed,
            None,
        ),
        row(
            "POST",
            "/api/bids",
            &[R::Bidder],
            Nothing,
            Some(json!({"envelope": {}, "signature": "00"})),
        ),
        row("GET", "/api/bids", &[R::Bidder], Nothing, None),
        row("GET", "/api/bids/{hash}", &[R::Bidder], Bid, None),
        row(
            "PUT",
            "/api/bids/{hash}/parts/{part}",
            &[R::Bidder],
            Bid,
            Some(json!({"not": "the part"})),
        ),
        row(
            "POST",
            "/api/bids/{hash}/withdraw",
            &[R::Bidder],
            Bid,
            Some(json!({"withdrawal": {}, "signature": "00"})),
        ),
        // The opening (开标): the room and the record are public; each
        // control belongs to one role, on its own section only.
        row("GET", "/api/sections/{id}/room", &ALL, Sealed, None),
        row(
            "POST",
            "/api/sections/{id}/room/tickets",
            &SIGNED_IN,
            Sealed,
            Some(json!({})),
        ),
        row("GET", "/api/sections/{id}/opening", &ALL, Sealed, None),
        row(
            "POST",
            "/api/sections/{id}/opening/signin/open",
            &[R::Host],
            Sealed,
            Some(json!({})),
        ),
        row(
            "POST",
            "/api/sections/{id}/opening/signin",
            &[R::Bidder],
            Sealed,
            Some(json!({})),
        ),
        row(
            "POST",
            "/api/sections/{id}/opening/key-releases",
            &[R::Custodian],
            Sealed,
            Some(json!({"release": {}, "signature": "00"})),
        ),
        row(
            "POST",
            "/api/sections/{id}/opening/decryptions",
            &[R::Bidder],
            Sealed,
            Some(json!({"envelope_hash": "00", "bmk": "00"})),
        ),
        row(
            "POST",
            "/api/sections/{id}/opening/extend",
            &[R::Host],
            Sealed,
            Some(json!({"minutes": 10, "reason": "网络波动"})),
        ),
        row(
            "POST",
            "/api/sections/{id}/opening/incidents",
            &[R::Host],
            Sealed,
            Some(json!({"reason": "平台故障"})),
        ),
        row(
            "POST",
            "/api/sections/{id}/opening/incidents/{incident}/countersign",
            &[R::Supervisor],
            Sealed,
            Some(json!({"signature": "00"})),
        ),
        row(
            "POST",
            "/api/sections/{id}/opening/resume",
            &[R::Host],
            Sealed,
            Some(json!({})),
        ),
        row(
            "POST",
            "/api/sections/{id}/opening/confirmations",
            &[R::Bidder],
            Sealed,
            Some(json!({"record_hash": "00", "signature": "00"})),
        ),
        row(
            "POST",
            "/api/sections/{id}/opening/objections",
            &[R::Bidder],
            Sealed,
            Some(json!({"text": "异议"})),
        ),
        row(
            "POST",
            "/api/sections/{id}/opening/objections/{objection}/answer",
            &[R::Host],
            Sealed,
            Some(json!({"text": "答复"})),
        ),
        row(
            "POST",
            "/api/sections/{id}/opening/close",
            &[R::Host],
            Sealed,
            Some(json!({})),
        ),
        row(
            "POST",
            "/api/sections/{id}/opening/countersign",
            &[R::Supervisor],
            Sealed,
            Some(json!({"signature": "00"})),
        ),
        row(
            "POST",
            "/api/sections/{id}/opening/notices",
            &[R::Host],
            Sealed,
            Some(json!({"text": "公告"})),
        ),
        row(
            "GET",
            "/api/public/sections/{id}/opening-record",
            &ALL,
            Sealed,
            None,
        ),
        row(
            "GET",
            "/api/public/sections/{id}/opening-record.html",
            &ALL,
            Sealed,
            None,
        ),
        row("GET", "/api/experts.csv", &[R::Admin], Nothing, None),
        row(
            "PUT",
            "/api/experts.csv",
            &[R::Admin],
            Nothing,
            Some(json!({})),
        ),
        row(
            "POST",
            "/api/sections/{id}/evaluation/draw/commitments",
            &ALL,
            Sealed,
            Some(json!({})),
        ),
        row(
            "POST",
            "/api/sections/{id}/evaluation/draw",
            &[R::Host],
            Sealed,
            Some(json!({"requirements": [], "centres": []})),
        ),
        row(
            "POST",
            "/api/sections/{id}/evaluation/draw/reveals",
            &ALL,
            Sealed,
            Some(json!({})),
        ),
        row(
            "GET",
            "/api/sections/{id}/evaluation/draw",
            &[R::Host, R::Supervisor],
            Sealed,
            None,
        ),
        row(
            "GET",
            "/api/sections/{id}/evaluation",
            &[R::Host],
            Sealed,
            None,
        ),
        row(
            "POST",
            "/api/sections/{id}/evaluation/finish",
            &[R::Host],
            Sealed,
            Some(json!({})),
        ),
        row(
            "POST",
            "/api/evaluation/answer",
            &ALL,
            Nothing,
            Some(json!({"token": "kbx_nope", "accept": true})),
        ),
        row(
            "POST",
            "/api/sections/{id}/evaluation/admit",
            &ALL,
            Sealed,
            Some(json!({})),
        ),
        row(
            "POST",
            "/api/sections/{id}/evaluation/votes",
            &ALL,
            Sealed,
            Some(json!({})),
        ),
        row(
            "POST",
            "/api/sections/{id}/evaluation/scores",
            &ALL,
            Sealed,
            Some(json!({})),
        ),
        row(
            "POST",
            "/api/sections/{id}/evaluation/report/signatures",
            &ALL,
            Sealed,
            Some(json!({})),
        ),
        row(
            "POST",
            "/api/sections/{id}/evaluation/publish",
            &[R::Host],
            Sealed,
            Some(json!({})),
        ),
        row(
            "POST",
            "/api/sections/{id}/publicity/objections",
            &[R::Bidder],
            Sealed,
            Some(json!({"text": "异议"})),
        ),
        row(
            "POST",
            "/api/sections/{id}/publicity/objections/{objection}/answer",
            &[R::Tenderer],
            Sealed,
            Some(json!({"text": "答复"})),
        ),
        row(
            "GET",
            "/api/public/sections/{id}/result",
            &ALL,
            Sealed,
            None,
        ),
        row(
            "POST",
            "/api/sections/{id}/evaluation/outliers",
            &ALL,
            Sealed,
            Some(json!({})),
        ),
        row(
            "POST",
            "/api/sections/{id}/evaluation/recusals",
            &ALL,
            Sealed,
            Some(json!({})),
        ),
        row(
            "POST",
            "/api/sections/{id}/evaluation/clarifications",
            &ALL,
            Sealed,
            Some(json!({})),
        ),
        row(
            "POST",
            "/api/sections/{id}/clarifications/{clarification}/answer",
            &[R::Bidder],
            Sealed,
            Some(json!({"answer": "澄清", "signature": "00"})),
        ),
        row(
            "POST",
            "/api/sections/{id}/evaluation/pass",
            &[R::Expert],
            Sealed,
            Some(json!({"expert_key": "00"})),
        ),
        row("GET", "/api/log/checkpoint", &ALL, Nothing, None),
        row("GET", "/api/log/entries", &ALL, Nothing, None),
        row("GET", "/api/log/proof/inclusion", &ALL, Nothing, None),
        row("GET", "/api/log/proof/consistency", &ALL, Nothing, None),
    ]
}

fn person(w: &World, r: R) -> Option<&Person> {
    Some(match r {
        R::Anon => return None,
        R::Admin => &w.admin,
        R::Host => &w.host,
        R::HostB => &w.host_b,
        R::Tenderer => &w.tenderer,
        R::Supervisor => &w.supervisor,
        R::SupervisorB => &w.supervisor_b,
        R::Custodian => &w.custodians[0].person,
        R::Expert => &w.expert,
        R::Bidder => &w.bidders[0],
    })
}

fn first_doc(section: &Value) -> String {
    section["documents"][0]["id"].as_str().unwrap().to_string()
}

async fn section_json(app: &TestApp, w: &World, id: &str) -> Value {
    app.get(&format!("/api/sections/{id}"), Some(&w.host.token))
        .await
        .expect(200)
}

#[actix_web::test]
async fn every_role_on_every_endpoint() {
    let store = TestStore::new();
    let app = spawn(&store).start().await;
    let w = World::build(&app).await;
    let draft = w.ready(&app, 30).await;
    let draft_json = section_json(&app, &w, &draft).await;
    let draft_project = draft_json["project"]["id"].as_str().unwrap().to_string();
    let published = w.published(&app, 30).await;
    let published_doc = first_doc(&section_json(&app, &w, &published).await);
    // A section sealed at its deadline, and a bid of bidder 0 in the published one.
    let sealed = w.published(&app, 20).await;
    let keys = w.bidder_keys(&app, 0).await;
    let root = tempfile::tempdir().unwrap();
    let (dir, bid) = crate::world::seal(
        &app,
        root.path(),
        &w.bidders[0],
        &keys,
        &published,
        "1.00",
        b"docs",
        None,
    )
    .await;
    let envelope: Value =
        serde_json::from_slice(&std::fs::read(dir.join("envelope.json")).unwrap()).unwrap();
    app.post("/api/bids", Some(&w.bidders[0].token), envelope)
        .await
        .expect(201);
    app.advance(chrono::Duration::days(21));
    app.eventually("the section is sealed", || async {
        app.get(&format!("/api/public/sections/{sealed}/manifest"), None)
            .await
            .status
            == 200
    })
    .await;
    let fixtures = Fixtures {
        draft: &draft,
        draft_project: &draft_project,
        draft_json: &draft_json,
        published: &published,
        published_doc: &published_doc,
        sealed: &sealed,
        bid: &bid,
    };

    let rows = table(&w);
    // The table covers the route table exactly.
    let mut covered: Vec<(String, String)> = rows
        .iter()
        .map(|r| (r.method.to_string(), r.pattern.to_string()))
        .collect();
    covered.sort();
    let mut routes: Vec<(String, String)> = kaibiao::http::route_table()
        .into_iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    routes.sort();
    assert_eq!(
        covered, routes,
        "the authorisation table must name every route"
    );

    let mut failures = Vec::new();
    let mut checked = 0;
    for r in &rows {
        // Allowed roles go last, so a permitted change cannot mask a refusal.
        let mut order: Vec<R> = ALL
            .iter()
            .copied()
            .filter(|x| !r.allowed.contains(x))
            .collect();
        order.extend(ALL.iter().copied().filter(|x| r.allowed.contains(x)));
        for role in order {
            let (path, body) = concretise(&app, &w, r, &fixtures).await;
            let token = match (r.pattern, person(&w, role)) {
                // Signing out ends the session: use a throwaway one.
                ("/api/auth/logout", Some(p)) => Some(login(&app, &p.username).await),
                ("/api/auth/session", Some(p)) if r.method == "DELETE" => {
                    Some(login(&app, &p.username).await)
                }
                (_, p) => p.map(|p| p.token.clone()),
            };
            let res = if r.pattern == "/api/sections/{id}/documents" {
                app.raw(
                    "POST",
                    &format!("{path}?name=a.pdf"),
                    token.as_deref(),
                    "application/pdf",
                    b"%PDF".to_vec(),
                )
                .await
            } else {
                app.request(r.method, &path, token.as_deref(), body).await
            };
            let status = res.status.as_u16();
            let allowed = r.allowed.contains(&role);
            let code = if res.body.first() == Some(&b'{') {
                res.json()["error"].as_str().unwrap_or("").to_string()
            } else {
                String::new()
            };
            let ok = if allowed {
                // Reached the use case: success, or a refusal about the input
                // or the state — never about who is asking. (A route open
                // to everyone may answer "not found" about the thing itself,
                // such as the opening record of a section that failed before
                // any announcement: that hides nothing from anybody.)
                (!(403..=405).contains(&status) && code != "unauthenticated")
                    || (r.allowed.len() == ALL.len() && status == 404 && code == "not_found")
            } else if role == R::Anon || r.allowed.is_empty() {
                status == 401 && code == "unauthenticated"
            } else {
                (status == 403 && code == "forbidden") || (status == 404 && code == "not_found")
            };
            checked += 1;
            if !ok {
                failures.push(format!(
                    "{:?} {} {} -> {} {}",
                    role,
                    r.method,
                    r.pattern,
                    status,
                    res.text()
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {checked} decisions wrong:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(checked, rows.len() * ALL.len());
    app.stop().await;
}

struct Fixtures<'a> {
    draft: &'a str,
    draft_project: &'a str,
    draft_json: &'a Value,
    published: &'a str,
    published_doc: &'a str,
    sealed: &'a str,
    bid: &'a str,
}

async fn concretise(
    app: &TestApp,
    w: &World,
    r: &Row,
    f: &Fixtures<'_>,
) -> (String, Option<Value>) {
    let mut body = r.body.clone();
    // Bodies that must be unique per attempt.
    if let Some(b) = body.as_mut() {
        if b.get("credit_code").is_some_and(|c| c == "to-be-replaced") {
            b["credit_code"] = json!(credit_code(unique()));
        }
        if b.get("username").is_some_and(|c| c == "to-be-replaced") {
            b["username"] = json!(format!("u-{}", unique()));
        }
        if b.get("code").is_some_and(|c| c == "to-be-replaced") {
            b["code"] = json!(format!("P-{}", unique()));
        }
        if b.get("code")
            .is_some_and(|c| c.as_str().is_some_and(|s| s.starts_with("S-")))
        {
            b["code"] = json!(format!("S-{}", unique()));
        }
    }
    let (id, doc) = match r.target {
        Target::Nothing => (String::new(), String::new()),
        Target::Draft if r.pattern.starts_with("/api/projects/") => {
            (f.draft_project.to_string(), String::new())
        }
        Target::Draft => (f.draft.to_string(), first_doc(f.draft_json)),
        Target::Published => (f.published.to_string(), f.published_doc.to_string()),
        Target::Sealed => (f.sealed.to_string(), String::new()),
        Target::Bid => (f.bid.to_string(), String::new()),
        Target::FreshDraft => {
            let s = w.ready(app, 30).await;
            let d = first_doc(&section_json(app, w, &s).await);
            (s, d)
        }
        Target::FreshPublished => {
            let s = w.published(app, 30).await;
            (s, String::new())
        }
        Target::User => {
            let p = crate::world::person(
                app,
                Some(&w.centre),
                kaibiao::domain::identity::Role::Host,
                "victim",
            )
            .await;
            (p.id, String::new())
        }
    };
    let path = r
        .pattern
        .replace("{id}", &id)
        .replace("{doc}", &doc)
        .replace("{hash}", &id)
        .replace("{part}", "summary")
        .replace("{incident}", "inc_0")
        .replace("{objection}", "obj_0")
        .replace("{file}", "app.js");
    (path, body)
}
