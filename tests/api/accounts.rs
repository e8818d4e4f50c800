//! Registration, e-mail verification, sign-in, sessions and administration.

use serde_json::json;

use crate::helpers::{
    credit_code, detail_fields, spawn, unique, Resp, TestApp, TestStore, PASSWORD,
};
use crate::world::{login, person};
use kaibiao::domain::identity::Role;

fn registration(code: &str, username: &str) -> serde_json::Value {
    json!({
        "company_name": "华建工程集团有限公司",
        "credit_code": code,
        "username": username,
        "email": format!("{username}@huajian.example.cn"),
        "display_name": "李工",
        "password": PASSWORD,
    })
}

fn verification_token(mail: &str) -> String {
    let start = mail.find("?verify=").expect("a verification link") + "?verify=".len();
    mail[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .collect()
}

async fn registered_and_verified(app: &TestApp) -> String {
    let username = format!("li-{}", unique());
    app.post(
        "/api/auth/register",
        None,
        registration(&credit_code(unique()), &username),
    )
    .await
    .expect(201);
    let mail = app
        .wait_for_mail(&format!("{username}@huajian.example.cn"), "verify")
        .await;
    app.post(
        "/api/auth/verify-email",
        None,
        json!({"token": verification_token(&mail)}),
    )
    .await
    .expect(200);
    username
}

#[actix_web::test]
async fn a_bidder_registers_verifies_its_email_and_signs_in() {
    let store = TestStore::new();
    let app = spawn(&store).start().await;
    let username = format!("li-{}", unique());
    let r = app
        .post(
            "/api/auth/register",
            None,
            registration(&credit_code(unique()), &username),
        )
        .await
        .expect(201);
    assert_eq!(r["organisation"]["kind"], "bidder");
    assert_eq!(r["user"]["role"], "bidder");
    assert_eq!(r["user"]["email_verified"], false);

    // Not before the address is verified.
    app.post(
        "/api/auth/login",
        None,
        json!({"username": username, "password": PASSWORD}),
    )
    .await
    .expect_error(403, "email_not_verified");

    let mail = app
        .wait_for_mail(&format!("{username}@huajian.example.cn"), "verify")
        .await;
    assert!(mail.contains("请在 48 小时内"), "Chinese first: {mail}");
    assert!(
        mail.contains("Please open this link"),
        "English too: {mail}"
    );
    let token = verification_token(&mail);
    app.post("/api/auth/verify-email", None, json!({"token": token}))
        .await
        .expect(200);
    // A link works once.
    app.post("/api/auth/verify-email", None, json!({"token": token}))
        .await
        .expect_error(422, "token_invalid");

    let s = app
        .post(
            "/api/auth/login",
            None,
            json!({"username": username.to_uppercase(), "password": PASSWORD}),
        )
        .await
        .expect(200);
    let me = app
        .get("/api/auth/me", s["token"].as_str())
        .await
        .expect(200);
    assert_eq!(me["user"]["username"], username);
    assert_eq!(me["organisation"]["name"], "华建工程集团有限公司");
    app.stop().await;
}

#[actix_web::test]
async fn expired_verification_links_do_not_verify() {
    let store = TestStore::new();
    let app = spawn(&store).start().await;
    let username = format!("late-{}", unique());
    app.post(
        "/api/auth/register",
        None,
        registration(&credit_code(unique()), &username),
    )
    .await
    .expect(201);
    let mail = app
        .wait_for_mail(&format!("{username}@huajian.example.cn"), "verify")
        .await;
    app.advance(chrono::Duration::hours(49));
    app.post(
        "/api/auth/verify-email",
        None,
        json!({"token": verification_token(&mail)}),
    )
    .await
    .expect_error(422, "token_invalid");
    // A fresh link can be asked for; the answer is the same for unknown names.
    let a = app
        .post(
            "/api/auth/resend-verification",
            None,
            json!({"username": username}),
        )
        .await;
    let b = app
        .post(
            "/api/auth/resend-verification",
            None,
            json!({"username": "nobody-at-all"}),
        )
        .await;
    assert_eq!(a.status, 202);
    assert_eq!(a.json()["message"], b.json()["message"]);
    app.stop().await;
}

#[actix_web::test]
async fn invalid_registrations_list_every_problem_and_create_nothing() {
    let store = TestStore::new();
    let app = spawn(&store).start().await;
    // A valid code with its check character replaced by another one.
    let mut bad_code = credit_code(unique());
    let right = bad_code.pop().unwrap();
    bad_code.push(if right == '0' { '1' } else { '0' });
    let v = app
        .post(
            "/api/auth/register",
            None,
            json!({"company_name": "", "credit_code": "91110000000000000X", "username": "ab",
                   "email": "nope", "display_name": "李", "password": "short"}),
        )
        .await
        .expect_error(422, "validation_failed");
    let fields = detail_fields(&v);
    for f in [
        "company_name",
        "credit_code",
        "username",
        "email",
        "password",
    ] {
        assert!(fields.contains(&f), "{f} missing from {fields:?}");
    }
    // A wrong check digit alone.
    let username = format!("cc-{}", unique());
    let v = app
        .post(
            "/api/auth/register",
            None,
            registration(&bad_code, &username),
        )
        .await
        .expect_error(422, "validation_failed");
    assert!(v["details"][0]["message"]
        .as_str()
        .unwrap()
        .contains("check character"));
    // Nothing was created: the username is still free.
    app.post(
        "/api/auth/register",
        None,
        registration(&credit_code(unique()), &username),
    )
    .await
    .expect(201);
    app.stop().await;
}

#[actix_web::test]
async fn duplicate_organisations_and_usernames_are_refused_without_side_effects() {
    let store = TestStore::new();
    let app = spawn(&store).start().await;
    let code = credit_code(unique());
    let first = format!("first-{}", unique());
    app.post("/api/auth/register", None, registration(&code, &first))
        .await
        .expect(201);
    let second = format!("second-{}", unique());
    app.post("/api/auth/register", None, registration(&code, &second))
        .await
        .expect_error(409, "organisation_exists");
    // The lower-case spelling of the same code is the same organisation.
    app.post(
        "/api/auth/register",
        None,
        registration(&code.to_lowercase(), &second),
    )
    .await
    .expect_error(409, "organisation_exists");
    // The second username was not taken by the failed attempt…
    app.post(
        "/api/auth/register",
        None,
        registration(&credit_code(unique()), &second),
    )
    .await
    .expect(201);
    // …and the first one cannot be taken again.
    app.post(
        "/api/auth/register",
        None,
        registration(&credit_code(unique()), &first),
    )
    .await
    .expect_error(409, "username_taken");
    app.stop().await;
}

#[actix_web::test]
async fn wrong_passwords_and_unknown_users_look_the_same_and_are_throttled() {
    let store = TestStore::new();
    let app = spawn(&store).start().await;
    let username = registered_and_verified(&app).await;
    let wrong = app
        .post(
            "/api/auth/login",
            None,
            json!({"username": username, "password": "not the password"}),
        )
        .await
        .expect_error(401, "invalid_credentials");
    let unknown = app
        .post(
            "/api/auth/login",
            None,
            json!({"username": "no-such-user", "password": "not the password"}),
        )
        .await
        .expect_error(401, "invalid_credentials");
    assert_eq!(wrong["message"], unknown["message"]);

    // Four more failures lock the account name for 15 minutes…
    for _ in 0..4 {
        app.post(
            "/api/auth/login",
            None,
            json!({"username": username, "password": "guess"}),
        )
        .await
        .expect_error(401, "invalid_credentials");
    }
    let locked = app
        .post(
            "/api/auth/login",
            None,
            json!({"username": username, "password": PASSWORD}),
        )
        .await;
    locked.expect_error(429, "too_many_requests");
    assert!(locked.headers.get("retry-after").is_some());
    // …and unknown names are throttled just the same (no enumeration).
    for _ in 0..4 {
        app.post(
            "/api/auth/login",
            None,
            json!({"username": "no-such-user", "password": "guess"}),
        )
        .await
        .expect_error(401, "invalid_credentials");
    }
    app.post(
        "/api/auth/login",
        None,
        json!({"username": "no-such-user", "password": "guess"}),
    )
    .await
    .expect_error(429, "too_many_requests");

    app.advance(chrono::Duration::minutes(16));
    app.post(
        "/api/auth/login",
        None,
        json!({"username": username, "password": PASSWORD}),
    )
    .await
    .expect(200);
    app.stop().await;
}

/// A sign-in from `address` (as the trusted proxy in front says).
async fn login_from(app: &TestApp, address: &str, username: &str, password: &str) -> Resp {
    let mut r = app
        .client
        .post(app.url("/api/auth/login"))
        .insert_header(("X-Forwarded-For", address))
        .send_json(&json!({"username": username, "password": password}))
        .await
        .unwrap();
    Resp {
        status: r.status(),
        headers: r.headers().clone(),
        body: r.body().await.unwrap().to_vec(),
    }
}

/// A rival who knows a bidder's username cannot keep it out: the failures
/// lock the rival's address, not the account, and the account under
/// attack slows down instead.
#[actix_web::test]
async fn a_rival_cannot_lock_a_bidder_out_by_failing_to_sign_in_as_it() {
    let store = TestStore::new();
    let app = spawn(&store)
        .config(|c| {
            c.server.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
            c.rules.login_slowdown_ms = 400;
        })
        .start()
        .await;
    let username = registered_and_verified(&app).await;
    let (rival, bidder) = ("203.0.113.7", "198.51.100.20");
    for _ in 0..5 {
        login_from(&app, rival, &username, "guess")
            .await
            .expect_error(401, "invalid_credentials");
    }
    // The rival's address is refused for this account, even with the
    // right password…
    login_from(&app, rival, &username, PASSWORD)
        .await
        .expect_error(429, "too_many_requests");
    // …but the bidder, from its own office, signs in.
    login_from(&app, bidder, &username, PASSWORD)
        .await
        .expect(200);
    // Under attack, a wrong password waits before its answer, from anywhere.
    let began = std::time::Instant::now();
    login_from(&app, "192.0.2.99", &username, "another guess")
        .await
        .expect_error(401, "invalid_credentials");
    assert!(
        began.elapsed() >= std::time::Duration::from_millis(400),
        "the failure was answered at once"
    );
    // The right password is never slowed down.
    login_from(&app, "192.0.2.100", &username, PASSWORD)
        .await
        .expect(200);
    app.stop().await;

    // Without a trusted proxy, a forwarded address is not believed: the
    // rival cannot pose as many addresses to escape its own lock.
    let store = TestStore::new();
    let app = spawn(&store).start().await;
    let username = registered_and_verified(&app).await;
    for i in 0..5 {
        login_from(&app, &format!("203.0.113.{i}"), &username, "guess")
            .await
            .expect_error(401, "invalid_credentials");
    }
    login_from(&app, "203.0.113.200", &username, "guess")
        .await
        .expect_error(429, "too_many_requests");
    app.stop().await;
}

#[actix_web::test]
async fn sessions_expire_and_can_be_revoked() {
    let store = TestStore::new();
    let app = spawn(&store)
        .config(|c| c.rules.session_ttl_hours = 12)
        .start()
        .await;
    let username = registered_and_verified(&app).await;
    let a = login(&app, &username).await;
    let b = login(&app, &username).await;
    app.get("/api/auth/me", Some(&a)).await.expect(200);

    app.post("/api/auth/logout", Some(&a), json!({}))
        .await
        .expect(204);
    app.get("/api/auth/me", Some(&a))
        .await
        .expect_error(401, "unauthenticated");
    app.get("/api/auth/me", Some(&b)).await.expect(200);

    app.advance(chrono::Duration::hours(12));
    app.get("/api/auth/me", Some(&b))
        .await
        .expect_error(401, "unauthenticated");
    app.get("/api/auth/me", Some("kbs_forged"))
        .await
        .expect_error(401, "unauthenticated");
    app.get("/api/auth/me", None)
        .await
        .expect_error(401, "unauthenticated");
    app.stop().await;
}

#[actix_web::test]
async fn administrators_manage_organisations_and_users() {
    let store = TestStore::new();
    let app = spawn(&store).start().await;
    let admin = person(&app, None, Role::Admin, "admin").await;
    let centre = app
        .post(
            "/api/admin/organisations",
            Some(&admin.token),
            json!({"kind": "trading_centre", "name": "某市公共资源交易中心", "credit_code": credit_code(unique()), "centre_code": "gz-01"}),
        )
        .await
        .expect(201);
    assert_eq!(centre["centre_code"], "GZ-01");
    let v = app
        .post(
            "/api/admin/organisations",
            Some(&admin.token),
            json!({"kind": "bidder", "name": "X", "credit_code": "123", "centre_code": "A1"}),
        )
        .await
        .expect_error(422, "validation_failed");
    assert_eq!(v["details"].as_array().unwrap().len(), 3, "{v}");

    // A bidder cannot belong to a trading centre.
    let username = format!("wrong-{}", unique());
    app.post(
        "/api/admin/users",
        Some(&admin.token),
        json!({"org_id": centre["id"], "role": "bidder", "username": username, "email": "w@example.cn",
               "display_name": "W", "password": PASSWORD}),
    )
    .await
    .expect_error(422, "validation_failed");
    let host = app
        .post(
            "/api/admin/users",
            Some(&admin.token),
            json!({"org_id": centre["id"], "role": "host", "username": username, "email": "host@example.cn",
                   "display_name": "主持人", "password": PASSWORD}),
        )
        .await
        .expect(201);
    app.wait_for_mail("host@example.cn", "verify").await;

    // Disabling ends every session at once.
    let someone = person(&app, Some(centre["id"].as_str().unwrap()), Role::Host, "h2").await;
    app.get("/api/auth/me", Some(&someone.token))
        .await
        .expect(200);
    app.post(
        &format!("/api/admin/users/{}/disable", someone.id),
        Some(&admin.token),
        json!({}),
    )
    .await
    .expect(200);
    app.get("/api/auth/me", Some(&someone.token))
        .await
        .expect_error(401, "unauthenticated");
    app.post(
        "/api/auth/login",
        None,
        json!({"username": someone.username, "password": PASSWORD}),
    )
    .await
    .expect_error(403, "forbidden");
    app.post(
        &format!("/api/admin/users/{}/enable", someone.id),
        Some(&admin.token),
        json!({}),
    )
    .await
    .expect(200);
    let fresh = login(&app, &someone.username).await;
    app.post(
        &format!("/api/admin/users/{}/revoke-sessions", someone.id),
        Some(&admin.token),
        json!({}),
    )
    .await
    .expect(200);
    app.get("/api/auth/me", Some(&fresh))
        .await
        .expect_error(401, "unauthenticated");

    let users = app
        .get("/api/admin/users", Some(&admin.token))
        .await
        .expect(200);
    assert!(users
        .as_array()
        .unwrap()
        .iter()
        .any(|u| u["id"] == host["id"]));
    app.stop().await;
}

/// The `Set-Cookie` header of `r` for cookie `name`, whole.
fn set_cookie(r: &Resp, name: &str) -> String {
    r.headers
        .get_all("set-cookie")
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no Set-Cookie for {name}"))
        .to_string()
}

/// The value part of a `Set-Cookie` header.
fn cookie_value(header: &str) -> &str {
    header.split(';').next().unwrap().split_once('=').unwrap().1
}

/// A browser signs in with a cookie it cannot read from scripts; every
/// request that changes something must carry the session's CSRF token;
/// signing out ends the session and clears the cookies.
#[actix_web::test]
async fn a_browser_session_lives_in_an_http_only_cookie_guarded_against_csrf() {
    let store = TestStore::new();
    let app = spawn(&store)
        .config(|c| c.rules.session_ttl_hours = 12)
        .start()
        .await;
    let username = registered_and_verified(&app).await;
    let sign_in = |password: &'static str| {
        let (app, username) = (&app, username.clone());
        async move {
            app.request_with(
                "POST",
                "/api/auth/session",
                &[],
                Some(json!({"username": username, "password": password})),
            )
            .await
        }
    };
    // A wrong password: the usual refusal, and no cookie.
    let bad = sign_in("wrong password").await;
    bad.expect_error(401, "invalid_credentials");
    assert!(bad.headers.get("set-cookie").is_none());

    let r = sign_in(PASSWORD).await;
    let body = r.expect(200);
    let session = set_cookie(&r, "__Host-kb_session");
    let csrf = set_cookie(&r, "__Host-kb_csrf");
    for attr in ["Secure", "SameSite=Strict", "Path=/", "Max-Age=43200"] {
        assert!(
            session.contains(attr) && csrf.contains(attr),
            "{session} / {csrf}"
        );
    }
    assert!(session.contains("HttpOnly"), "{session}");
    assert!(!csrf.contains("HttpOnly"), "the page reads the CSRF token");
    assert_eq!(
        r.headers.get("cache-control").unwrap().to_str().unwrap(),
        "no-store"
    );
    // The body names the user and the CSRF token, never the session token.
    let token = cookie_value(&session).to_string();
    assert_eq!(body["csrf_token"], cookie_value(&csrf));
    assert_eq!(body["user"]["username"], username.as_str());
    assert!(
        !r.text().contains(&token),
        "the session token is only in the cookie"
    );
    let csrf = body["csrf_token"].as_str().unwrap().to_string();

    let cookie = format!("__Host-kb_session={token}");
    let me = app
        .request_with("GET", "/api/auth/me", &[("Cookie", &cookie)], None)
        .await
        .expect(200);
    assert_eq!(me["user"]["username"], username.as_str());

    // Changing something by cookie: refused without the CSRF token, with
    // another session's or a mangled one; done with the right one.
    let change = |headers: Vec<(&'static str, String)>| {
        let app = &app;
        async move {
            let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            app.request_with(
                "POST",
                "/api/keys/challenges",
                &h,
                Some(json!({"purpose": "bidder_signing"})),
            )
            .await
        }
    };
    change(vec![("Cookie", cookie.clone())])
        .await
        .expect_error(403, "csrf_rejected");
    let other = sign_in(PASSWORD).await.expect(200)["csrf_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(other, csrf, "each session has its own");
    change(vec![("Cookie", cookie.clone()), ("X-CSRF-Token", other)])
        .await
        .expect_error(403, "csrf_rejected");
    change(vec![
        ("Cookie", cookie.clone()),
        ("X-CSRF-Token", csrf.to_uppercase()),
    ])
    .await
    .expect_error(403, "csrf_rejected");
    change(vec![
        ("Cookie", cookie.clone()),
        ("X-CSRF-Token", csrf.clone()),
    ])
    .await
    .expect(201);
    // A bearer token is the CLI's: it needs no CSRF token and ignores
    // cookies, a stale one included.
    let bearer = login(&app, &username).await;
    app.request_with(
        "POST",
        "/api/keys/challenges",
        &[
            ("Authorization", &format!("Bearer {bearer}")),
            ("Cookie", "__Host-kb_session=kbs_stale"),
        ],
        Some(json!({"purpose": "bidder_signing"})),
    )
    .await
    .expect(201);
    app.request_with(
        "GET",
        "/api/auth/me",
        &[("Cookie", "__Host-kb_session=kbs_forged")],
        None,
    )
    .await
    .expect_error(401, "unauthenticated");

    // Signing out needs the CSRF token too (no page elsewhere can sign a
    // user out), ends the session and clears both cookies.
    app.request_with("DELETE", "/api/auth/session", &[("Cookie", &cookie)], None)
        .await
        .expect_error(403, "csrf_rejected");
    let out = app
        .request_with(
            "DELETE",
            "/api/auth/session",
            &[("Cookie", &cookie), ("X-CSRF-Token", &csrf)],
            None,
        )
        .await;
    assert_eq!(out.status.as_u16(), 204);
    for name in ["__Host-kb_session", "__Host-kb_csrf"] {
        let c = set_cookie(&out, name);
        assert!(
            c.contains("Max-Age=0") && cookie_value(&c).is_empty(),
            "{c}"
        );
    }
    app.request_with("GET", "/api/auth/me", &[("Cookie", &cookie)], None)
        .await
        .expect_error(401, "unauthenticated");

    // A session's cookie dies with its session's time.
    let r = sign_in(PASSWORD).await;
    let cookie = format!(
        "__Host-kb_session={}",
        cookie_value(&set_cookie(&r, "__Host-kb_session"))
    );
    app.advance(chrono::Duration::hours(12));
    app.request_with("GET", "/api/auth/me", &[("Cookie", &cookie)], None)
        .await
        .expect_error(401, "unauthenticated");
    app.stop().await;
}
