//! E-mail: the transports (SMTP, `.eml` files) and the outbox worker that
//! delivers what use cases queued in their transactions.

pub mod mailer;
pub mod outbox;
pub mod templates;
