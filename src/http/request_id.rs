//! The request id: taken from a well-formed `X-Request-Id` header or made up,
//! returned in the response header and every error envelope, and attached to
//! every log line of the request. It lives in a task-local for the duration
//! of the request, so code that renders errors can find it without threading
//! it through every call.

use rand::RngCore;

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The current request's id, or `-` outside a request.
pub fn current() -> String {
    REQUEST_ID
        .try_with(|id| id.clone())
        .unwrap_or_else(|_| "-".into())
}

/// Runs `fut` with `id` as the current request id.
pub async fn scope<F: std::future::Future>(id: String, fut: F) -> F::Output {
    REQUEST_ID.scope(id, fut).await
}

pub fn generate() -> String {
    let mut b = [0u8; 12];
    rand::thread_rng().fill_bytes(&mut b);
    hex::encode(b)
}

/// Accepts a client-supplied id only if it is short and plain, so it can be
/// logged without escaping and cannot smuggle data into the logs.
pub fn accept(header: Option<&str>) -> String {
    match header {
        Some(h)
            if (8..=64).contains(&h.len())
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
        {
            h.to_string()
        }
        _ => generate(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odd_client_ids_are_replaced() {
        assert_eq!(accept(Some("abc-123_XYZ")), "abc-123_XYZ");
        assert_ne!(accept(Some("short")), "short");
        assert_ne!(accept(Some("has space in it")), "has space in it");
        assert_eq!(accept(None).len(), 24);
    }

    #[tokio::test]
    async fn scoped() {
        assert_eq!(current(), "-");
        let got = scope("req-12345678".into(), async { current() }).await;
        assert_eq!(got, "req-12345678");
    }
}
