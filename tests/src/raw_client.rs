//! A raw XMPP client for tests: it logs in to the harness's Prosody (STARTTLS with the
//! harness's CA, SASL PLAIN, bind) and then sends whatever XML a test gives it, as is.
//!
//! Why not a client library: a library refuses to write what a hostile stranger
//! would send (a `<delay/>` stamped `-1`, odd characters, odd nesting). This client
//! writes bytes, so tests can put exactly that through a real server to perchd.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use base64::Engine as _;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

const DOMAIN: &str = "localhost";

type Tls = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// A logged-in stream to the server.
pub struct RawClient {
    tls: Tls,
    /// What was read and not yet consumed by [`RawClient::read_until`].
    pending: String,
    /// The full JID the server bound.
    pub jid: String,
}

fn header() -> String {
    format!(
        "<?xml version='1.0'?><stream:stream to='{DOMAIN}' version='1.0' \
         xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"
    )
}

/// Reads from `r` until `buf` holds `needle`; returns everything up to its end.
fn read_into(
    r: &mut impl Read,
    buf: &mut String,
    needle: &str,
    timeout: Duration,
) -> Result<String> {
    let deadline = Instant::now() + timeout;
    let mut chunk = [0u8; 16384];
    loop {
        if let Some(i) = buf.find(needle) {
            let rest = buf.split_off(i + needle.len());
            return Ok(std::mem::replace(buf, rest));
        }
        if Instant::now() >= deadline {
            bail!("no {needle:?} from the server within {timeout:?}; got: {buf}");
        }
        match r.read(&mut chunk) {
            Ok(0) => bail!("the server closed the stream; got: {buf}"),
            Ok(n) => buf.push_str(&String::from_utf8_lossy(&chunk[..n])),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(e).context("reading from the server"),
        }
    }
}

impl RawClient {
    /// Logs in as `user@localhost` on `127.0.0.1:port`, trusting `ca_file`.
    pub fn connect(port: u16, ca_file: &Path, user: &str, password: &str) -> Result<Self> {
        const STEP: Duration = Duration::from_secs(10);
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let mut tcp = TcpStream::connect_timeout(&addr, STEP)
            .with_context(|| format!("connecting to {addr}"))?;
        tcp.set_read_timeout(Some(Duration::from_millis(200)))?;
        let mut buf = String::new();
        tcp.write_all(header().as_bytes())?;
        read_into(&mut tcp, &mut buf, "</stream:features>", STEP)?;
        tcp.write_all(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")?;
        read_into(&mut tcp, &mut buf, "<proceed", STEP)?;

        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(ca_file)
            .with_context(|| format!("reading {}", ca_file.display()))?
        {
            roots.add(cert?)?;
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let conn = rustls::ClientConnection::new(Arc::new(config), ServerName::try_from(DOMAIN)?)?;
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        let mut buf = String::new();
        tls.write_all(header().as_bytes())?;
        read_into(&mut tls, &mut buf, "</stream:features>", STEP)?;
        let auth =
            base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{password}"));
        tls.write_all(
            format!(
                "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{auth}</auth>"
            )
            .as_bytes(),
        )?;
        let answer = read_into(&mut tls, &mut buf, "/>", STEP)?;
        if !answer.contains("<success") {
            read_into(&mut tls, &mut buf, "</failure>", STEP).ok();
            bail!("{user}@{DOMAIN} could not log in: {answer}");
        }
        tls.write_all(header().as_bytes())?;
        read_into(&mut tls, &mut buf, "</stream:features>", STEP)?;
        tls.write_all(
            b"<iq type='set' id='bind-1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>\
              <resource>raw</resource></bind></iq>",
        )?;
        let bound = read_into(&mut tls, &mut buf, "</iq>", STEP)?;
        let jid = bound
            .split("<jid>")
            .nth(1)
            .and_then(|s| s.split("</jid>").next())
            .with_context(|| format!("no bound JID in {bound}"))?
            .to_owned();
        Ok(Self {
            tls,
            pending: buf,
            jid,
        })
    }

    /// Writes `xml` to the stream as is.
    pub fn send(&mut self, xml: &str) -> Result<()> {
        self.tls.write_all(xml.as_bytes())?;
        self.tls.flush()?;
        Ok(())
    }

    /// Reads until the server has sent `needle`; returns what came up to its end.
    pub fn read_until(&mut self, needle: &str, timeout: Duration) -> Result<String> {
        read_into(&mut self.tls, &mut self.pending, needle, timeout)
    }

    /// Closes the stream.
    pub fn close(mut self) -> Result<()> {
        self.send("</stream:stream>")
    }
}
