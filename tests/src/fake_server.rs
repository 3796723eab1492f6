//! A minimal, scripted XMPP server on 127.0.0.1, for input no real server relays.
//!
//! Why: Prosody and ejabberd parse what they relay and would refuse (or could not
//! even build) the hostile stanzas a test needs — a message nested 5,000 deep, a
//! 20 MB one. This server does just enough for perchd to log in — stream header,
//! STARTTLS with a certificate of the harness's throwaway CA, SASL PLAIN (any
//! password), resource binding, an empty roster — then sends whatever bytes the test
//! hands it ([`FakeServer::send`]) and records everything the client sends
//! ([`FakeServer::received`]). It answers the client's other IQ requests with
//! `service-unavailable`. No stream management is offered: a reconnection is a new
//! session, counted by [`FakeServer::sessions`].

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use anyhow::{Context, Result, anyhow, bail, ensure};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tempfile::TempDir;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};

use crate::{DOMAIN, find_program, make_certificates, temp_dir};

const NS_STREAM: &str = "http://etherx.jabber.org/streams";

#[derive(Default)]
struct Shared {
    /// Everything the clients sent after TLS, in order (all connections).
    received: Mutex<String>,
    /// Sessions bound so far.
    sessions: AtomicU32,
    /// The full JID of the latest bound session.
    bound: Mutex<Option<String>>,
    /// Why the server task stopped, if it did.
    error: Mutex<Option<String>>,
}

/// The fake server; dropped, it stops.
pub struct FakeServer {
    port: u16,
    dir: TempDir,
    shared: Arc<Shared>,
    tx: Option<mpsc::UnboundedSender<Vec<u8>>>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl FakeServer {
    /// Starts the server for `user@localhost` (any password is accepted).
    pub fn start(user: &str) -> Result<Self> {
        let openssl = find_program("openssl", "openssl", "openssl")?;
        let dir = temp_dir("perch-e2e-fake-xmpp-")?;
        make_certificates(&openssl, dir.path())?;
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_file_iter(dir.path().join("certs/localhost.crt"))
                .context("reading the test certificate")?
                .collect::<std::result::Result<_, _>>()?;
        let key = PrivateKeyDer::from_pem_file(dir.path().join("certs/localhost.key"))
            .context("reading the test key")?;
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));

        let listener = std::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))?;
        listener.set_nonblocking(true)?;
        let port = listener.local_addr()?.port();
        let shared = Arc::new(Shared::default());
        let (tx, rx) = mpsc::unbounded_channel();
        let (stop, stop_rx) = oneshot::channel();
        let user = user.to_owned();
        let task_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name("fake-xmpp".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        *lock(&task_shared.error) = Some(format!("runtime: {e}"));
                        return;
                    }
                };
                let result = rt.block_on(async {
                    let listener = TcpListener::from_std(listener)?;
                    serve(listener, acceptor, &user, rx, stop_rx, &task_shared).await
                });
                if let Err(e) = result {
                    *lock(&task_shared.error) = Some(format!("{e:#}"));
                }
            })?;
        Ok(Self {
            port,
            dir,
            shared,
            tx: Some(tx),
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// `127.0.0.1:<port>`, for `perch profile create --server`.
    pub fn server_arg(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The CA that signed the server's certificate, for `--ca-file`.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca").join("ca.crt")
    }

    /// Sends raw bytes to the connected client (queued until one is bound).
    pub fn send(&self, bytes: impl Into<Vec<u8>>) -> Result<()> {
        self.tx
            .as_ref()
            .ok_or_else(|| anyhow!("the fake server is stopped"))?
            .send(bytes.into())
            .map_err(|_| anyhow!("the fake server has stopped: {}", self.error()))
    }

    /// Everything clients sent after TLS so far.
    pub fn received(&self) -> String {
        lock(&self.shared.received).clone()
    }

    /// Sessions bound so far (a reconnection makes one more).
    pub fn sessions(&self) -> u32 {
        self.shared.sessions.load(Ordering::SeqCst)
    }

    /// The full JID bound by the latest session.
    pub fn bound_jid(&self) -> Option<String> {
        lock(&self.shared.bound).clone()
    }

    /// Why the server stopped, or "" while it runs.
    pub fn error(&self) -> String {
        lock(&self.shared.error).clone().unwrap_or_default()
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        // Dropping the sender ends the server's loop.
        self.stop.take();
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

async fn serve(
    listener: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    user: &str,
    mut rx: mpsc::UnboundedReceiver<Vec<u8>>,
    mut stop: oneshot::Receiver<()>,
    shared: &Shared,
) -> Result<()> {
    loop {
        let tcp = tokio::select! {
            accepted = listener.accept() => accepted?.0,
            _ = &mut stop => return Ok(()),
        };
        let ended = tokio::select! {
            ended = session(tcp, &acceptor, user, &mut rx, shared) => ended,
            _ = &mut stop => return Ok(()),
        };
        match ended {
            Ok(Ended::ServerDropped) => return Ok(()),
            // The client went away: wait for the next one (queued bytes stay queued).
            Ok(Ended::ClientGone) => {}
            Err(e) => {
                lock(&shared.received).push_str(&format!("\n[fake server: session error: {e:#}]\n"))
            }
        }
    }
}

enum Ended {
    ClientGone,
    ServerDropped,
}

/// Bytes read from one connection, consumed up to markers.
struct Reader<S> {
    io: S,
    buf: Vec<u8>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Reader<S> {
    /// Reads until `needle` is in the buffer; returns the text up to and including
    /// it, leaving the rest.
    async fn until(&mut self, needle: &str) -> Result<String> {
        loop {
            if let Some(pos) = find(&self.buf, needle.as_bytes()) {
                let end = pos + needle.len();
                let text = String::from_utf8_lossy(&self.buf[..end]).into_owned();
                self.buf.drain(..end);
                return Ok(text);
            }
            let mut chunk = [0u8; 8192];
            let n = self.io.read(&mut chunk).await?;
            if n == 0 {
                bail!(
                    "the client closed the connection while the server waited for {needle:?}; \
                     unread: {:?}",
                    String::from_utf8_lossy(&self.buf)
                );
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Reads the client's stream header.
    async fn header(&mut self) -> Result<String> {
        self.until("<stream:stream").await?;
        self.until(">").await
    }

    async fn write(&mut self, text: &str) -> Result<()> {
        self.io.write_all(text.as_bytes()).await?;
        self.io.flush().await?;
        Ok(())
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn header(id: u32) -> String {
    format!(
        "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='{NS_STREAM}' \
         id='fake-{id}' from='{DOMAIN}' version='1.0' xml:lang='en'>"
    )
}

/// The value of attribute `name` in a start tag.
fn attr(tag: &str, name: &str) -> Option<String> {
    for q in ['"', '\''] {
        let key = format!(" {name}={q}");
        if let Some(start) = tag.find(&key) {
            let rest = &tag[start + key.len()..];
            return rest.find(q).map(|end| rest[..end].to_owned());
        }
    }
    None
}

async fn session(
    tcp: TcpStream,
    acceptor: &tokio_rustls::TlsAcceptor,
    user: &str,
    rx: &mut mpsc::UnboundedReceiver<Vec<u8>>,
    shared: &Shared,
) -> Result<Ended> {
    let n = shared.sessions.load(Ordering::SeqCst);
    let mut plain = Reader {
        io: tcp,
        buf: Vec::new(),
    };
    plain.header().await?;
    plain
        .write(&format!(
            "{}<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/>\
             </starttls></stream:features>",
            header(n * 3 + 1)
        ))
        .await?;
    plain.until("<starttls").await?;
    if !plain.until(">").await?.ends_with("/>") {
        plain.until("</starttls>").await?;
    }
    plain
        .write("<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
        .await?;
    ensure!(plain.buf.is_empty(), "client data before the TLS handshake");
    let tls = acceptor.accept(plain.io).await.context("TLS handshake")?;
    let mut r = Reader {
        io: tls,
        buf: Vec::new(),
    };
    r.header().await?;
    r.write(&format!(
        "{}<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>\
         <mechanism>PLAIN</mechanism></mechanisms></stream:features>",
        header(n * 3 + 2)
    ))
    .await?;
    r.until("</auth>").await?;
    r.write("<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>")
        .await?;
    r.header().await?;
    r.write(&format!(
        "{}<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>",
        header(n * 3 + 3)
    ))
    .await?;
    let bind = r.until("</iq>").await?;
    let id = attr(&bind, "id").ok_or_else(|| anyhow!("bind request without id: {bind}"))?;
    let resource = bind
        .split_once("<resource>")
        .and_then(|(_, rest)| rest.split_once("</resource>"))
        .map_or("fake", |(res, _)| res);
    let full = format!("{user}@{DOMAIN}/{resource}");
    r.write(&format!(
        "<iq type='result' id='{id}'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>\
         <jid>{full}</jid></bind></iq>"
    ))
    .await?;
    *lock(&shared.bound) = Some(full.clone());
    shared.sessions.fetch_add(1, Ordering::SeqCst);

    // The session: answer the client's requests, send what the test queues.
    let mut pending = String::new();
    loop {
        let mut chunk = vec![0u8; 8192];
        tokio::select! {
            n = r.io.read(&mut chunk) => {
                let n = n?;
                if n == 0 {
                    return Ok(Ended::ClientGone);
                }
                let text = String::from_utf8_lossy(&chunk[..n]).into_owned();
                lock(&shared.received).push_str(&text);
                pending.push_str(&text);
                for answer in answer_requests(&mut pending, &full) {
                    r.write(&answer).await?;
                }
            }
            bytes = rx.recv() => match bytes {
                Some(bytes) => {
                    r.io.write_all(&bytes).await?;
                    r.io.flush().await?;
                }
                None => return Ok(Ended::ServerDropped),
            },
        }
    }
}

/// Answers of the complete IQ requests at the start of `pending` (which keeps the
/// incomplete rest): the roster is empty, everything else `service-unavailable`.
fn answer_requests(pending: &mut String, full: &str) -> Vec<String> {
    let mut answers = Vec::new();
    while let Some(start) = pending.find("<iq") {
        let Some(tag_end) = pending[start..].find('>').map(|e| start + e) else {
            break;
        };
        let tag = pending[start..=tag_end].to_owned();
        let end = if tag.ends_with("/>") {
            tag_end + 1
        } else {
            match pending[tag_end..].find("</iq>") {
                Some(e) => tag_end + e + "</iq>".len(),
                None => break,
            }
        };
        let whole = pending[start..end].to_owned();
        pending.drain(..end);
        let kind = attr(&tag, "type").unwrap_or_default();
        if kind != "get" && kind != "set" {
            continue;
        }
        let id = attr(&tag, "id").unwrap_or_default();
        let to = attr(&tag, "to")
            .map(|t| format!(" from='{t}'"))
            .unwrap_or_default();
        answers.push(if whole.contains("jabber:iq:roster") && kind == "get" {
            format!(
                "<iq type='result' id='{id}' to='{full}'{to}><query xmlns='jabber:iq:roster'/></iq>"
            )
        } else {
            format!(
                "<iq type='error' id='{id}' to='{full}'{to}><error type='cancel'>\
                 <service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"
            )
        });
    }
    if !pending.contains("<iq") {
        // Nothing of an IQ is pending: keep only a possible partial `<i`.
        let keep = pending.len().saturating_sub(2);
        pending.drain(..keep);
    }
    answers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_requests_and_keeps_partial_ones() {
        let mut p = String::from(
            "<presence/><iq type=\"get\" id=\"r1\"><query xmlns=\"jabber:iq:roster\"/></iq>\
             <iq type='result' id='x'/><iq type='get' id='d1' to='localhost'><query xmlns='urn:disco'/>",
        );
        let a = answer_requests(&mut p, "a@localhost/r");
        assert_eq!(a.len(), 1, "{a:?}");
        assert!(a[0].contains("id='r1'") && a[0].contains("jabber:iq:roster"));
        p.push_str("</iq>");
        let a = answer_requests(&mut p, "a@localhost/r");
        assert_eq!(a.len(), 1, "{a:?}");
        assert!(a[0].contains("id='d1'") && a[0].contains("service-unavailable"));
        assert!(a[0].contains("from='localhost'"));
    }
}
