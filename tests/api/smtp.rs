//! A small SMTP server for tests: speaks enough of RFC 5321 for a real
//! client (lettre) to deliver to it, records what arrives, and can refuse
//! the first N deliveries with a temporary failure.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

#[derive(Debug, Clone)]
pub struct Received {
    pub from: String,
    pub to: Vec<String>,
    pub data: String,
}

pub struct SmtpServer {
    pub port: u16,
    pub received: Arc<Mutex<Vec<Received>>>,
    pub refused: Arc<AtomicUsize>,
}

impl SmtpServer {
    /// Starts on a free port; the first `fail_first` transactions get `451`.
    pub async fn start(fail_first: usize) -> SmtpServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let remaining = Arc::new(AtomicUsize::new(fail_first));
        let refused = Arc::new(AtomicUsize::new(0));
        let (r, rem, refd) = (received.clone(), remaining.clone(), refused.clone());
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                let (r, rem, refd) = (r.clone(), rem.clone(), refd.clone());
                tokio::spawn(async move {
                    let (rd, mut wr) = sock.into_split();
                    let mut lines = BufReader::new(rd).lines();
                    let _ = wr.write_all(b"220 smtp.test ESMTP ready\r\n").await;
                    let mut current: Option<Received> = None;
                    while let Ok(Some(line)) = lines.next_line().await {
                        let upper = line.to_ascii_uppercase();
                        let reply: &[u8] = if upper.starts_with("EHLO") {
                            b"250-smtp.test\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n"
                        } else if upper.starts_with("HELO") {
                            b"250 smtp.test\r\n"
                        } else if upper.starts_with("MAIL FROM:") {
                            let fail = rem
                                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                                    n.checked_sub(1)
                                })
                                .is_ok();
                            if fail {
                                refd.fetch_add(1, Ordering::SeqCst);
                                b"451 4.3.0 try again later\r\n"
                            } else {
                                current = Some(Received {
                                    from: line[10..].trim().to_string(),
                                    to: Vec::new(),
                                    data: String::new(),
                                });
                                b"250 2.1.0 ok\r\n"
                            }
                        } else if upper.starts_with("RCPT TO:") {
                            if let Some(c) = current.as_mut() {
                                c.to.push(line[8..].trim().trim_matches(['<', '>']).to_string());
                            }
                            b"250 2.1.5 ok\r\n"
                        } else if upper == "DATA" {
                            let _ = wr.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await;
                            let mut data = String::new();
                            while let Ok(Some(l)) = lines.next_line().await {
                                if l == "." {
                                    break;
                                }
                                data.push_str(l.strip_prefix('.').unwrap_or(&l));
                                data.push('\n');
                            }
                            if let Some(mut c) = current.take() {
                                c.data = data;
                                r.lock().unwrap().push(c);
                            }
                            b"250 2.0.0 queued\r\n"
                        } else if upper == "QUIT" {
                            let _ = wr.write_all(b"221 2.0.0 bye\r\n").await;
                            break;
                        } else {
                            b"250 ok\r\n"
                        };
                        if wr.write_all(reply).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        SmtpServer {
            port,
            received,
            refused,
        }
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}
