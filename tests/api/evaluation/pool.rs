//! The expert pool (专家库), imported and exported as CSV by an
//! administrator: a broken file changes nothing and lists every problem;
//! an export imports back unchanged, and names people only by digest.

use super::pool_csv;
use crate::helpers::{detail_fields, spawn, TestStore};
use crate::world::World;

const BROKEN: &str =
    "id,centre,name,email,specialties,employer,related_orgs,related_people,available\n\
                      X1,gz,n,not-mail,,123,,,maybe\n";

#[actix_web::test]
async fn a_broken_pool_file_changes_nothing_and_lists_every_problem() {
    let store = TestStore::new();
    let app = spawn(&store).start().await;
    let w = World::build(&app).await;
    let admin = w.admin.token.as_str();
    let put = |token: String| {
        let app = &app;
        async move {
            app.raw(
                "PUT",
                "/api/experts.csv",
                Some(&token),
                "text/csv",
                BROKEN.into(),
            )
            .await
        }
    };
    let e = put(admin.to_string())
        .await
        .expect_error(422, "validation_failed");
    let fields = detail_fields(&e);
    for f in [
        "row 2.centre",
        "row 2.email",
        "row 2.specialties",
        "row 2.employer",
        "row 2.available",
    ] {
        assert!(fields.contains(&f), "{fields:?}");
    }
    put(w.host.token.clone())
        .await
        .expect_error(403, "forbidden");
    let exported = app.get("/api/experts.csv", Some(admin)).await;
    assert_eq!(exported.status, 200);
    assert!(!exported.text().contains("X1,"), "nothing was imported");
    app.stop().await;
}

#[actix_web::test]
async fn an_exported_pool_imports_back_unchanged_and_names_people_only_by_digest() {
    let store = TestStore::new();
    let app = spawn(&store).start().await;
    let w = World::build(&app).await;
    let admin = w.admin.token.as_str();
    let put = |csv: String| {
        app.raw(
            "PUT",
            "/api/experts.csv",
            Some(admin),
            "text/csv",
            csv.into(),
        )
    };
    put(pool_csv(&app, &w).await).await.expect(200);
    let exported = app.get("/api/experts.csv", Some(admin)).await;
    assert_eq!(exported.status, 200);
    let text = exported.text();
    assert!(
        !text.contains(&w.bidders[1].email),
        "a person's identifier leaked"
    );
    assert!(text.contains("sha256:"));
    put(text.clone()).await.expect(200);
    assert_eq!(app.get("/api/experts.csv", Some(admin)).await.text(), text);
    app.stop().await;
}
