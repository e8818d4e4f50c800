//! Mail transports over lettre: SMTP for production (plain, STARTTLS or
//! implicit TLS, optional credentials) and `.eml` files in the data
//! directory as the embedded default.

use std::path::PathBuf;
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::config::{MailConfig, MailTransport, SmtpTls};
use crate::db::outbox::MailRow;

#[derive(Clone)]
pub enum Mailer {
    Files(AsyncFileTransport<Tokio1Executor>, PathBuf),
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
}

impl Mailer {
    pub fn from_config(cfg: &MailConfig, data_dir: &std::path::Path) -> anyhow::Result<Self> {
        match cfg.transport {
            MailTransport::File => {
                let dir = data_dir.join("mail");
                std::fs::create_dir_all(&dir)?;
                Ok(Mailer::Files(AsyncFileTransport::new(&dir), dir))
            }
            MailTransport::Smtp => {
                let s = &cfg.smtp;
                let mut b = match s.tls {
                    SmtpTls::None => {
                        AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&s.host)
                    }
                    SmtpTls::Starttls => {
                        AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&s.host)?
                    }
                    SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&s.host)?,
                }
                .port(s.port)
                .timeout(Some(Duration::from_secs(s.timeout_secs)));
                if !s.username.is_empty() {
                    b = b.credentials(Credentials::new(s.username.clone(), s.password.clone()));
                }
                Ok(Mailer::Smtp(b.build()))
            }
        }
    }

    pub fn describe(&self) -> &'static str {
        match self {
            Mailer::Files(..) => "files",
            Mailer::Smtp(_) => "smtp",
        }
    }

    /// Sends one queued mail. The error text is for the outbox record and
    /// the operator's log, never for a client.
    pub async fn send(&self, from: &Mailbox, mail: &MailRow) -> Result<(), String> {
        let to: Mailbox = mail
            .to_addr
            .parse()
            .map_err(|e| format!("bad recipient: {e}"))?;
        let msg = Message::builder()
            .from(from.clone())
            .to(to)
            .subject(mail.subject.clone())
            .header(ContentType::TEXT_PLAIN)
            .raw_header(lettre::message::header::HeaderValue::new(
                lettre::message::header::HeaderName::new_from_ascii_str("X-Kaibiao-Mail-Id"),
                mail.id.to_string(),
            ))
            .body(mail.body.clone())
            .map_err(|e| format!("cannot build message: {e}"))?;
        match self {
            Mailer::Files(t, _) => t.send(msg).await.map(|_| ()).map_err(|e| e.to_string()),
            Mailer::Smtp(t) => t.send(msg).await.map(|_| ()).map_err(|e| e.to_string()),
        }
    }
}
