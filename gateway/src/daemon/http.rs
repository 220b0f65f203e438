//! `/healthz` and `/metrics` (OpenMetrics text, which Prometheus reads) on a
//! loopback port: a deliberately tiny HTTP/1.1 responder (GET only, one
//! request per connection, bounded reads), so that no HTTP framework widens
//! the attack surface. The metrics themselves are prometheus-client's.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The media type of OpenMetrics text (prometheus-client's encoding).
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

use super::State;

pub async fn serve(addr: SocketAddr, state: Arc<State>, cancel: CancellationToken) -> Result<()> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("Listening on {addr}"))?;
    tracing::info!(%addr, "health and metrics endpoint listening");
    loop {
        let (mut conn, _) = tokio::select! {
            r = listener.accept() => r.context("Accepting a connection")?,
            _ = cancel.cancelled() => return Ok(()),
        };
        let state = state.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            let mut len = 0;
            let read = tokio::time::timeout(Duration::from_secs(5), async {
                while len < buf.len() {
                    let n = conn.read(&mut buf[len..]).await?;
                    if n == 0 {
                        break;
                    }
                    len += n;
                    if buf[..len].windows(4).any(|w| w == b"\r\n\r\n") {
                        break;
                    }
                }
                Ok::<_, std::io::Error>(())
            })
            .await;
            if !matches!(read, Ok(Ok(()))) {
                return;
            }
            let line = String::from_utf8_lossy(&buf[..len]);
            let path = line
                .lines()
                .next()
                .and_then(|l| l.strip_prefix("GET "))
                .and_then(|l| l.split(' ').next());
            let text = "text/plain; charset=utf-8";
            let (status, content_type, body) = match path {
                Some("/healthz") => match state.health().await {
                    Ok(()) => ("200 OK", text, "ok\n".to_string()),
                    Err(why) => ("503 Service Unavailable", text, format!("{why}\n")),
                },
                Some("/metrics") => match state.metrics().await {
                    Ok(metrics) => ("200 OK", OPENMETRICS, metrics),
                    Err(e) => ("500 Internal Server Error", text, format!("{e:#}\n")),
                },
                Some(_) => ("404 Not Found", text, "not found\n".to_string()),
                None => ("405 Method Not Allowed", text, "GET only\n".to_string()),
            };
            let response = format!(
                "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = conn.write_all(response.as_bytes()).await;
            let _ = conn.shutdown().await;
        });
    }
}
