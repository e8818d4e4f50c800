//! Mail through the durable outbox over a real SMTP conversation: delivery,
//! retry with back-off after a temporary failure, and giving up.

use kaibiao::config::{MailTransport, SmtpTls};
use serde_json::json;

use crate::helpers::{credit_code, spawn, unique, TestApp, TestStore, PASSWORD};
use crate::smtp::SmtpServer;

async fn register(app: &TestApp) -> String {
    let username = format!("mail-{}", unique());
    app.post(
        "/api/auth/register",
        None,
        json!({"company_name": "邮件测试有限公司", "credit_code": credit_code(unique()), "username": username,
               "email": format!("{username}@example.cn"), "display_name": "王工", "password": PASSWORD}),
    )
    .await
    .expect(201);
    format!("{username}@example.cn")
}

async fn outbox(app: &TestApp) -> Vec<kaibiao::db::outbox::MailRow> {
    let db = app.db.clone();
    tokio::task::spawn_blocking(move || {
        kaibiao::db::outbox::all(&mut db.get_blocking().unwrap()).unwrap()
    })
    .await
    .unwrap()
}

fn smtp_config(port: u16) -> impl FnOnce(&mut kaibiao::config::Config) {
    move |c| {
        c.mail.transport = MailTransport::Smtp;
        c.mail.smtp.host = "127.0.0.1".into();
        c.mail.smtp.port = port;
        c.mail.smtp.tls = SmtpTls::None;
        c.mail.max_attempts = 3;
    }
}

#[actix_web::test]
async fn mail_is_delivered_over_smtp_and_retried_after_a_temporary_failure() {
    let smtp = SmtpServer::start(1).await;
    let store = TestStore::new();
    let app = spawn(&store).config(smtp_config(smtp.port)).start().await;
    let to = register(&app).await;

    // The first attempt is refused with 451; the mail waits 30 s to retry.
    app.eventually("a refused attempt", || async {
        smtp.refused.load(std::sync::atomic::Ordering::SeqCst) == 1
    })
    .await;
    app.eventually("the failure recorded", || async {
        outbox(&app).await.first().is_some_and(|m| {
            m.attempts == 1 && m.state == kaibiao::domain::states::MailState::Pending
        })
    })
    .await;
    let m = &outbox(&app).await[0];
    assert_eq!(
        m.next_attempt_at - app.now().millis(),
        30_000,
        "back-off of 30 s"
    );
    assert!(smtp.received().is_empty());
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(
        smtp.received().is_empty(),
        "no retry before the back-off ends"
    );

    app.advance(chrono::Duration::seconds(31));
    app.eventually("delivered on retry", || async {
        smtp.received().len() == 1
    })
    .await;
    let got = &smtp.received()[0];
    assert_eq!(got.to, vec![to]);
    assert!(got.from.contains("noreply@kaibiao.localhost"));
    assert!(got.data.contains("Subject:"));
    app.eventually("marked sent", || async {
        outbox(&app).await[0].state == kaibiao::domain::states::MailState::Sent
    })
    .await;
    assert_eq!(outbox(&app).await[0].attempts, 2);
    app.stop().await;
}

#[actix_web::test]
async fn mail_that_keeps_failing_is_marked_dead_after_the_last_attempt() {
    let smtp = SmtpServer::start(100).await;
    let store = TestStore::new();
    let app = spawn(&store).config(smtp_config(smtp.port)).start().await;
    register(&app).await;
    for attempt in 1..=3 {
        app.eventually(&format!("attempt {attempt}"), || async {
            smtp.refused.load(std::sync::atomic::Ordering::SeqCst) == attempt
        })
        .await;
        app.advance(chrono::Duration::hours(2));
    }
    app.eventually("dead", || async {
        outbox(&app).await[0].state == kaibiao::domain::states::MailState::Dead
    })
    .await;
    let m = &outbox(&app).await[0];
    assert_eq!(m.attempts, 3);
    assert!(
        m.last_error.as_deref().unwrap_or("").contains("451"),
        "{:?}",
        m.last_error
    );
    let metrics = app.scrape().await;
    assert!(
        metrics.contains("kaibiao_outbox_mails{state=\"dead\"} 1"),
        "{metrics}"
    );
    app.stop().await;
}
