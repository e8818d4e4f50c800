//! The outbox worker: delivers queued mail with retries and exponential
//! back-off (30 s, 1 min, 2 min … capped at 1 h); after `mail.max_attempts`
//! a mail is marked dead and left for the operator. Each mail is claimed with
//! a compare-and-set lease, so with several nodes each is sent once.

use std::time::Duration;

use lettre::message::Mailbox;

use super::mailer::Mailer;
use crate::db::outbox;
use crate::service::Services;

const LEASE_MS: i64 = 120_000;

pub fn backoff_ms(attempts: i32) -> i64 {
    (30_000i64 << attempts.clamp(0, 7)).min(3_600_000)
}

pub async fn run(svc: Services, mailer: Mailer, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let from: Mailbox = svc.config.mail.from.parse().expect("validated at load");
    let poll = Duration::from_millis(svc.config.mail.poll_interval_ms);
    tracing::info!(transport = mailer.describe(), "outbox worker started");
    loop {
        if *shutdown.borrow() {
            break;
        }
        if let Err(e) = deliver_due(&svc, &mailer, &from).await {
            tracing::error!(error = %e, "outbox pass failed");
        }
        let wake = svc.outbox_wake.notified();
        tokio::select! {
            _ = tokio::time::sleep(poll) => {}
            _ = wake => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// One pass over the due mail; returns how many were sent.
pub async fn deliver_due(
    svc: &Services,
    mailer: &Mailer,
    from: &Mailbox,
) -> crate::error::AppResult<usize> {
    let now = svc.now().millis();
    let due = svc.db.run(move |c| Ok(outbox::due(c, now, 50)?)).await?;
    let max = svc.config.mail.max_attempts;
    let mut sent = 0;
    for mail in due {
        let id = mail.id.clone();
        let claimed = svc
            .db
            .run(move |c| Ok(outbox::claim(c, &id, now, now + LEASE_MS)?))
            .await?;
        if claimed != 1 {
            continue;
        }
        let result = mailer.send(from, &mail).await;
        let id = mail.id.clone();
        let now = svc.now().millis();
        match result {
            Ok(()) => {
                svc.db
                    .run(move |c| Ok(outbox::mark_sent(c, &id, now)?))
                    .await?;
                svc.metrics
                    .inc("kaibiao_mail_sent_total", &[("kind", &mail.kind)]);
                tracing::info!(mail = %mail.id, kind = mail.kind, "mail sent");
                sent += 1;
            }
            Err(err) => {
                let dead = mail.attempts + 1 >= max;
                let next = now + backoff_ms(mail.attempts);
                tracing::warn!(mail = %mail.id, kind = mail.kind, attempts = mail.attempts + 1, dead, error = %err, "mail delivery failed");
                svc.metrics
                    .inc("kaibiao_mail_failures_total", &[("kind", &mail.kind)]);
                svc.db
                    .run(move |c| Ok(outbox::mark_failed(c, &id, &err, next, dead)?))
                    .await?;
            }
        }
    }
    Ok(sent)
}

#[cfg(test)]
mod tests {
    use super::backoff_ms;

    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(backoff_ms(0), 30_000);
        assert_eq!(backoff_ms(1), 60_000);
        assert_eq!(backoff_ms(6), 1_920_000);
        assert_eq!(backoff_ms(7), 3_600_000);
        assert_eq!(backoff_ms(50), 3_600_000);
    }
}
