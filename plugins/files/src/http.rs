//! A lean HTTP/1.1 client: one connection per transfer, hyper's connection-level
//! client over tokio's TCP and, for https, tokio-rustls with the profile's TLS
//! configuration (the XMPP stream's trust: system roots plus the profile's CA file,
//! or no verification when the profile says `insecure`).
//!
//! Why not reqwest: a transfer is one request to one host, so its pool, redirects,
//! cookies and proxy support are weight without use, and it would bring a second way
//! of building TLS roots; here the roots are the stream's own `ClientConfig`.
//!
//! Failures are the host's typed errors: DNS, TCP and TLS as `Unreachable` (a
//! certificate as `CertificateNotTrusted`), and an HTTP error status as the stanza
//! condition that means the same (RFC 6120's conditions mirror HTTP's: 404
//! `item-not-found`, 500 `internal-server-error`, …), its text naming the status and
//! the URL.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use hyper::body::Incoming;
use hyper::{Request, Response, Uri};
use hyper_util::rt::TokioIo;
use perch_plugin_api::{HostError, StanzaError};
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;

/// A request's body: streamed, never held whole.
pub type Body = BoxBody<Bytes, std::io::Error>;

/// How long connecting (TCP and TLS) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Where a URL points: what the connection needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub uri: Uri,
    pub https: bool,
    pub host: String,
    pub port: u16,
}

/// Parses an http(s) URL; anything else is a `BadArgument` naming it.
pub fn target(url: &str) -> Result<Target, HostError> {
    let bad = |why: &str| HostError::BadArgument(format!("url {url:?}: {why}"));
    let uri: Uri = url.parse().map_err(|_| bad("not a URL"))?;
    let https = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        _ => return Err(bad("not an http(s) URL")),
    };
    let host = uri
        .host()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| bad("no host"))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    Ok(Target {
        uri,
        https,
        host,
        port,
    })
}

/// The request target in origin form (`/path?query`), as HTTP/1.1 clients send it
/// to an origin server.
pub fn origin(t: &Target) -> Uri {
    t.uri
        .path_and_query()
        .and_then(|p| p.as_str().parse().ok())
        .unwrap_or_else(|| Uri::from_static("/"))
}

/// The `Host` header's value for a target.
pub fn authority(t: &Target) -> String {
    t.uri
        .authority()
        .map(|a| a.as_str().to_owned())
        .unwrap_or_else(|| t.host.clone())
}

fn unreachable(t: &Target, reason: impl std::fmt::Display) -> HostError {
    HostError::Unreachable {
        host: format!("{}:{}", t.host, t.port),
        reason: reason.to_string(),
    }
}

/// A TLS failure: the certificate's own, or the connection's.
fn tls_error(t: &Target, e: std::io::Error) -> HostError {
    let cert = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .filter(|r| {
            matches!(
                r,
                rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented
            )
        })
        .map(ToString::to_string);
    match cert {
        Some(reason) => HostError::CertificateNotTrusted {
            host: t.host.clone(),
            reason,
        },
        None => unreachable(t, format!("TLS: {e}")),
    }
}

/// Sends one request on a connection of its own and answers the response's head
/// (its body streams from the connection, driven by a task of its own).
pub async fn send(
    tls: Arc<ClientConfig>,
    t: &Target,
    req: Request<Body>,
) -> Result<Response<Incoming>, HostError> {
    let connect = TcpStream::connect((t.host.as_str(), t.port));
    let tcp = tokio::time::timeout(CONNECT_TIMEOUT, connect)
        .await
        .map_err(|_| unreachable(t, "connecting timed out"))?
        .map_err(|e| unreachable(t, e))?;
    let _ = tcp.set_nodelay(true);
    if !t.https {
        return exchange(TokioIo::new(tcp), t, req).await;
    }
    let name = ServerName::try_from(t.host.clone())
        .map_err(|e| HostError::BadArgument(format!("host {:?}: {e}", t.host)))?;
    let handshake = tokio_rustls::TlsConnector::from(tls).connect(name, tcp);
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, handshake)
        .await
        .map_err(|_| unreachable(t, "the TLS handshake timed out"))?
        .map_err(|e| tls_error(t, e))?;
    exchange(TokioIo::new(stream), t, req).await
}

async fn exchange<I>(io: I, t: &Target, req: Request<Body>) -> Result<Response<Incoming>, HostError>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| unreachable(t, e))?;
    let host = t.host.clone();
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(%host, error = %e, "HTTP connection ended with an error");
        }
    });
    sender
        .send_request(req)
        .await
        .map_err(|e| unreachable(t, format!("HTTP: {e}")))
}

/// The stanza condition meaning what an HTTP error status means.
pub fn condition(status: u16) -> &'static str {
    match status {
        401 => "not-authorized",
        403 => "forbidden",
        404 => "item-not-found",
        405 => "not-allowed",
        409 => "conflict",
        410 => "gone",
        413 => "not-acceptable",
        400..=499 => "bad-request",
        501 => "feature-not-implemented",
        504 => "remote-server-timeout",
        502 | 503 => "service-unavailable",
        _ => "internal-server-error",
    }
}

/// An HTTP error status as a typed error naming it and the URL.
pub fn status_error(status: hyper::StatusCode, url: &str) -> HostError {
    HostError::Stanza(StanzaError::new(
        condition(status.as_u16()),
        Some(format!("HTTP {status} from {url}")),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_taken_apart() {
        let t = target("https://localhost:5281/file_share/ab/c%20d.png").expect("parses");
        assert!(t.https);
        assert_eq!((t.host.as_str(), t.port), ("localhost", 5281));
        assert_eq!(authority(&t), "localhost:5281");
        assert_eq!(origin(&t), "/file_share/ab/c%20d.png");
        let t = target("http://[::1]/x").expect("parses");
        assert_eq!((t.host.as_str(), t.port, t.https), ("::1", 80, false));
        assert!(matches!(
            target("ftp://x/y"),
            Err(HostError::BadArgument(m)) if m.contains("ftp://x/y")
        ));
        assert!(target("not a url").is_err());
    }

    #[test]
    fn statuses_are_conditions() {
        assert_eq!(condition(500), "internal-server-error");
        assert_eq!(condition(404), "item-not-found");
        assert_eq!(condition(413), "not-acceptable");
        assert_eq!(condition(418), "bad-request");
        let e = status_error(hyper::StatusCode::INTERNAL_SERVER_ERROR, "https://x/a");
        assert!(e.to_string().contains("HTTP 500"), "{e}");
    }
}
