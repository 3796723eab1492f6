//! Opening one authenticated XMPP stream: TCP, StartTLS, SASL.
//!
//! Why not tokio-xmpp's connectors (measured; see `doc/architecture.rst`, "Why the
//! session task is shaped this way"): they leave Nagle's algorithm on (a delayed ACK
//! in every IQ round trip), take TLS roots only from the system with no way to add a CA or turn
//! verification off, and report every failure as one opaque error that their reconnect
//! loop retries forever. Here each attempt returns a [`ConnectError`] saying whether
//! retrying can help: a refused password or an untrusted certificate is fatal and
//! reported as such; a refused TCP connection is not, until the retry budget runs out
//! (the session decides that).

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, LazyLock, Mutex, PoisonError, Weak};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use perch_plugin_api::jid::Jid;
use rustls::ClientConfig;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use sasl::common::{ChannelBinding, Credentials as SaslCredentials};
use tokio::io::BufStream;
use tokio::net::TcpStream;
use tokio_xmpp::error::{AuthError, Error as XmppError};
use tokio_xmpp::parsers::{ns, starttls};
use tokio_xmpp::stanzastream::Connection;
use tokio_xmpp::xmlstream::{
    ReadError, StreamHeader, Timeouts, XmppStreamElement, initiate_stream,
};

use super::limits::{Limited, Limits, LogContext};
use super::quickack::QuickAck;
use crate::profiles::Credentials;

/// Why one connection attempt failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ConnectError {
    /// The server refused the credentials. Fatal.
    #[error("{0}")]
    Auth(String),
    /// The server's certificate did not verify. Fatal.
    #[error("{0}")]
    Certificate(String),
    /// The server does not speak what we need (no STARTTLS, no SASL mechanism). Fatal.
    #[error("{0}")]
    Protocol(String),
    /// DNS, TCP or the stream broke; another attempt may work.
    #[error("{0}")]
    Unreachable(String),
}

impl ConnectError {
    pub fn is_fatal(&self) -> bool {
        !matches!(self, Self::Unreachable(_))
    }
}

/// One crypto provider for every configuration (it is only tables of algorithms).
fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: LazyLock<Arc<CryptoProvider>> =
        LazyLock::new(|| Arc::new(rustls::crypto::ring::default_provider()));
    PROVIDER.clone()
}

/// TLS 1.3 tickets and TLS 1.2 sessions kept per configuration: a profile talks to
/// one server, and its uploads to a few more.
const RESUMPTION_SERVERS: usize = 8;

/// The TLS client configuration of a profile: the system roots plus the profile's CA
/// file, or no verification at all when the profile says `insecure`.
///
/// Each profile has a configuration of its own (its TLS session cache, so resuming
/// TLS never links two accounts for the server), sized for the few servers it talks
/// to: rustls' default cache reserves room for 256, 14 KB a profile. The
/// roots are shared ([`roots`]).
pub fn tls_config(ca_file: Option<&str>, insecure: bool) -> Result<Arc<ClientConfig>, String> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let mut config = if insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerify(provider())))
            .with_no_client_auth()
    } else {
        builder
            .with_root_certificates(roots(ca_file)?)
            .with_no_client_auth()
    };
    config.resumption = rustls::client::Resumption::in_memory_sessions(RESUMPTION_SERVERS);
    Ok(Arc::new(config))
}

/// The trusted roots: the system's plus those of `ca_file`, shared by every
/// configuration that trusts the same while any of them is alive.
///
/// Why shared: parsed, the system's roots (144 on Debian 12) take 66 KB,
/// and each session keeps its configuration for reconnecting: 1,000 profiles held
/// 1,000 identical copies (doc/performance.rst, "Where each profile's memory
/// goes"). The CA file is read each time and its contents are part of the key, so
/// an edited file takes effect for the next session as before; the system's roots
/// are read again once no configuration holds them.
fn roots(ca_file: Option<&str>) -> Result<Arc<rustls::RootCertStore>, String> {
    type Shared = HashMap<Option<Vec<u8>>, Weak<rustls::RootCertStore>>;
    static SHARED: LazyLock<Mutex<Shared>> = LazyLock::new(Mutex::default);
    let ca = match ca_file {
        Some(path) => Some((
            path,
            std::fs::read(path).map_err(|e| format!("CA file {path}: {e}"))?,
        )),
        None => None,
    };
    let key = ca.as_ref().map(|(_, pem)| pem.clone());
    let mut shared = SHARED.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(roots) = shared.get(&key).and_then(Weak::upgrade) {
        return Ok(roots);
    }
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for cert in native.certs {
        // A broken system certificate must not stop us; the others still count.
        let _ = roots.add(cert);
    }
    if let Some((path, pem)) = &ca {
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|e| format!("CA file {path}: {e}"))?;
            roots
                .add(cert)
                .map_err(|e| format!("CA file {path}: {e}"))?;
        }
    }
    let roots = Arc::new(roots);
    shared.retain(|_, w| w.strong_count() > 0);
    shared.insert(key, Arc::downgrade(&roots));
    Ok(roots)
}

/// Accepts any certificate (the profile's explicit `insecure` choice); signatures are
/// still checked so the handshake stays well-formed.
#[derive(Debug)]
struct NoVerify(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn unreachable(what: &str, e: impl std::fmt::Display) -> ConnectError {
    ConnectError::Unreachable(format!("{what}: {e}"))
}

/// A TCP connection to the account's server, and whether TLS starts at once
/// (XEP-0368 Direct TLS) or after STARTTLS.
struct Route {
    tcp: TcpStream,
    direct_tls: bool,
}

/// Connects to the first address of `host` that answers.
async fn connect_host(host: &str, port: u16) -> Result<TcpStream, ConnectError> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| unreachable(&format!("resolving {host}"), e))?
        .collect();
    let mut last = None;
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(unreachable(&format!("connecting to {addr}"), e)),
        }
    }
    Err(last.unwrap_or_else(|| ConnectError::Unreachable(format!("{host} has no address"))))
}

/// The profile's server override, else the domain's SRV records (XEP-0368: both
/// `_xmpps-client` and `_xmpp-client`, in priority order, Direct TLS first on a
/// tie), else the domain itself on port 5222 with STARTTLS.
async fn open_tcp(creds: &Credentials) -> Result<Route, ConnectError> {
    let route = match &creds.server {
        Some(e) => Route {
            tcp: connect_host(&e.host, e.port).await?,
            direct_tls: e.direct_tls,
        },
        None => {
            let domain = creds.jid.domain().as_str();
            let mut last = None;
            let mut found = None;
            for t in super::srv::targets(domain).await {
                match connect_host(&t.host, t.port).await {
                    Ok(tcp) => {
                        found = Some(Route {
                            tcp,
                            direct_tls: t.direct_tls,
                        });
                        break;
                    }
                    Err(e) => last = Some(e),
                }
            }
            match (found, last) {
                (Some(r), _) => r,
                (None, Some(e)) => return Err(e),
                (None, None) => Route {
                    tcp: connect_host(domain, 5222).await?,
                    direct_tls: false,
                },
            }
        }
    };
    route
        .tcp
        .set_nodelay(true)
        .map_err(|e| unreachable("setting TCP_NODELAY", e))?;
    Ok(route)
}

/// Maps an I/O error of the TLS handshake: certificate problems are fatal.
fn tls_error(domain: &str, e: std::io::Error) -> ConnectError {
    if let Some(inner) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        return match inner {
            rustls::Error::InvalidCertificate(c) => {
                ConnectError::Certificate(format!("certificate of {domain} rejected: {c:?}"))
            }
            rustls::Error::NoCertificatesPresented => {
                ConnectError::Certificate(format!("{domain} presented no certificate"))
            }
            // Version or cipher mismatch and the like: retrying will not help either.
            other => ConnectError::Protocol(format!("TLS handshake with {domain} failed: {other}")),
        };
    }
    unreachable(&format!("TLS handshake with {domain}"), e)
}

fn random_suffix() -> String {
    perch_plugin_api::ids::random_hex(4)
}

/// The full JID asked for at bind time: `user@domain/<resource>.<random>`.
pub fn requested_jid(creds: &Credentials, resource: &str) -> Jid {
    let full = format!("{}/{resource}.{}", creds.jid, random_suffix());
    Jid::new(&full).unwrap_or_else(|_| Jid::from(creds.jid.clone()))
}

/// Where a session's connections come from.
///
/// Why an enum: perchd always dials TCP and STARTTLS. The session's unit tests
/// (`session/tests.rs`) hand it in-memory streams with a scripted server on the other
/// end instead; everything from the secure channel on (the XML limits, the
/// acknowledgement gate, SASL, the restart) is then the code perchd runs.
#[derive(Clone)]
pub(crate) enum Transport {
    /// TCP to the account's server, STARTTLS, then TLS with this configuration.
    Tls(Arc<ClientConfig>),
    /// A stream from a test's fake server, taken as secure already.
    #[cfg(test)]
    Memory(MemoryDial),
}

/// Opens one in-memory connection to a test's fake server (an error: refused).
#[cfg(test)]
pub(crate) type MemoryDial = Arc<
    dyn Fn() -> futures::future::BoxFuture<'static, std::io::Result<tokio::io::DuplexStream>>
        + Send
        + Sync,
>;

/// One attempt: TCP, StartTLS, SASL, and the stream restart after it. Binding is left
/// to the stanza stream (it also does XEP-0198 resumption). What the server sends
/// passes through the XML limits (`limits.rs`) before and after TLS.
pub(crate) async fn connect_once(
    creds: &Credentials,
    identity: Jid,
    transport: &Transport,
    timeouts: Timeouts,
    limits: Limits,
    gate: Arc<super::ack::AckGate>,
    csi: Arc<super::csi::Csi>,
) -> Result<Connection, ConnectError> {
    let domain = creds.jid.domain().as_str().to_owned();
    let log = LogContext {
        profile: creds.profile.as_str().into(),
        jid: creds.jid.to_string().into(),
    };
    let secure = Secure {
        limits,
        log,
        gate,
        csi,
        timeouts,
    };
    match transport {
        Transport::Tls(tls) => {
            let route = open_tcp(creds).await?;
            let tcp = QuickAck::new(route.tcp);
            let name = ServerName::try_from(domain.clone()).map_err(|e| {
                ConnectError::Protocol(format!("{domain} is not a TLS server name: {e}"))
            })?;
            let (tcp, config) = if route.direct_tls {
                // XEP-0368 §3: ALPN names the protocol spoken inside.
                let mut config = (**tls).clone();
                config.alpn_protocols = vec![b"xmpp-client".to_vec()];
                (tcp, Arc::new(config))
            } else {
                let tcp = Limited::new(tcp, limits, secure.log.clone());
                (starttls(tcp, &domain, timeouts).await?, tls.clone())
            };
            let tls_stream = tokio_rustls::TlsConnector::from(config)
                .connect(name, tcp)
                .await
                .map_err(|e| tls_error(&domain, e))?;
            tracing::debug!(profile = %creds.profile, jid = %creds.jid, direct_tls = route.direct_tls, "TLS established");
            login(tls_stream, creds, identity, secure).await
        }
        #[cfg(test)]
        Transport::Memory(dial) => {
            let io = dial()
                .await
                .map_err(|e| unreachable(&format!("connecting to {domain}"), e))?;
            login(io, creds, identity, secure).await
        }
    }
}

/// The stream's buffers, kept as long as the connection: tokio's default is 8 KiB
/// each, and the read buffer is filled with zeros at once. Under TLS the read
/// buffer only copies decrypted bytes (rustls keeps the record); the writer gets
/// what tokio-xmpp serialised, in chunks of about 2 KiB (its own buffer's mark).
const READ_BUFFER: usize = 4096;
const WRITE_BUFFER: usize = 2048;

/// What the secure part of a connection is read and written through.
struct Secure {
    limits: Limits,
    log: LogContext,
    gate: Arc<super::ack::AckGate>,
    csi: Arc<super::csi::Csi>,
    timeouts: Timeouts,
}

/// The secure part of a connection: the stream, SASL, and the restart after it.
async fn login<S>(
    io: S,
    creds: &Credentials,
    identity: Jid,
    secure: Secure,
) -> Result<Connection, ConnectError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let domain = creds.jid.domain().as_str();
    let stream = initiate_stream(
        BufStream::with_capacity(
            READ_BUFFER,
            WRITE_BUFFER,
            Limited::new(io, secure.limits, secure.log)
                .with_gate(secure.gate)
                .with_csi(secure.csi),
        ),
        ns::JABBER_CLIENT,
        stream_header(domain),
        secure.timeouts,
    )
    .await
    .map_err(|e| unreachable("opening the TLS stream", e))?;
    let (features, stream) = stream
        .recv_features()
        .await
        .map_err(|e| unreachable("reading stream features", e))?;
    check_sasl_mechanisms(domain, &features.sasl_mechanisms)?;
    let node = creds.jid.node().map(|n| n.as_str()).unwrap_or_default();
    let sasl = SaslCredentials::default()
        .with_username(node)
        .with_password(creds.password.expose())
        .with_channel_binding(ChannelBinding::None);
    let stream = tokio_xmpp::client_login(stream, features.sasl_mechanisms, sasl)
        .await
        .map_err(sasl_error)?;
    let stream = stream
        .send_header(stream_header(domain))
        .await
        .map_err(|e| unreachable("restarting the stream", e))?;
    let (features, stream) = stream
        .recv_features()
        .await
        .map_err(|e| unreachable("reading stream features", e))?;
    Ok(Connection {
        stream: stream.box_stream(),
        features,
        identity,
    })
}

/// The header of the streams we open to `domain`.
fn stream_header(domain: &str) -> StreamHeader<'static> {
    StreamHeader {
        to: Some(Cow::Owned(domain.to_owned())),
        from: None,
        id: None,
    }
}

/// The plain-text part of a connection: opens the stream and asks for STARTTLS;
/// returns the TCP stream to upgrade once the server says proceed. A server without
/// STARTTLS is refused: Perch never logs in without TLS.
async fn starttls(
    tcp: Limited<QuickAck>,
    domain: &str,
    timeouts: Timeouts,
) -> Result<QuickAck, ConnectError> {
    let stream = initiate_stream(
        BufStream::new(tcp),
        ns::JABBER_CLIENT,
        stream_header(domain),
        timeouts,
    )
    .await
    .map_err(|e| unreachable("opening the stream", e))?;
    let (features, mut stream) = stream
        .recv_features::<XmppStreamElement>()
        .await
        .map_err(|e| unreachable("reading stream features", e))?;
    if !features.can_starttls() {
        return Err(ConnectError::Protocol(format!(
            "{domain} does not offer STARTTLS; Perch never logs in without TLS"
        )));
    }
    stream
        .send(&XmppStreamElement::Starttls(starttls::Nonza::Request(
            starttls::Request,
        )))
        .await
        .map_err(|e| unreachable("sending STARTTLS", e))?;
    loop {
        match stream.next().await {
            Some(Ok(XmppStreamElement::Starttls(starttls::Nonza::Proceed(_)))) => break,
            Some(Ok(XmppStreamElement::Starttls(_))) => {
                return Err(ConnectError::Protocol(format!("{domain} refused STARTTLS")));
            }
            Some(Ok(_)) | Some(Err(ReadError::SoftTimeout)) => {}
            Some(Err(e)) => return Err(unreachable("waiting for STARTTLS", e)),
            None => {
                return Err(ConnectError::Unreachable(
                    "stream closed during STARTTLS".into(),
                ));
            }
        }
    }
    Ok(stream.into_inner().into_inner().into_inner())
}

/// tokio-xmpp would fall back to ANONYMOUS when that is all the server offers: an
/// account profile must log in as itself or fail.
fn check_sasl_mechanisms(domain: &str, offered: &BTreeSet<String>) -> Result<(), ConnectError> {
    const USABLE: &[&str] = &["SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"];
    if offered.iter().any(|m| USABLE.contains(&m.as_str())) {
        return Ok(());
    }
    Err(ConnectError::Protocol(format!(
        "{domain} offers no usable SASL mechanism (offered: {offered:?}; usable: {USABLE:?})"
    )))
}

/// A failed SASL login: refused credentials are fatal, so is a missing mechanism.
fn sasl_error(e: XmppError) -> ConnectError {
    match e {
        XmppError::Auth(AuthError::Fail(cond)) => {
            ConnectError::Auth(format!("the server refused the credentials ({cond:?})"))
        }
        XmppError::Auth(AuthError::NoMechanism) => {
            ConnectError::Protocol("no SASL mechanism in common with the server".into())
        }
        XmppError::Auth(other) => ConnectError::Auth(other.to_string()),
        other => unreachable("authenticating", other),
    }
}

/// Default stream timeouts: a keepalive after 60 s of silence, dead 15 s later.
pub fn timeouts() -> Timeouts {
    Timeouts::tight()
}

/// How long to wait before attempt `n` (1-based) of a reconnection.
pub fn backoff(n: u32, max: Duration) -> Duration {
    let secs = 1u64
        .checked_shl(n.saturating_sub(1).min(20))
        .unwrap_or(u64::MAX);
    Duration::from_secs(secs).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_that_trust_the_same_share_their_roots() {
        let system = roots(None).unwrap();
        assert!(Arc::ptr_eq(&system, &roots(None).unwrap()));
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, b"").unwrap();
        let ca = ca.to_str().unwrap();
        let with_ca = roots(Some(ca)).unwrap();
        assert!(
            !Arc::ptr_eq(&system, &with_ca),
            "a CA file is a trust of its own"
        );
        assert!(Arc::ptr_eq(&with_ca, &roots(Some(ca)).unwrap()));
        let missing = roots(Some("/nonexistent/ca.pem")).unwrap_err();
        assert!(missing.contains("/nonexistent/ca.pem"), "{missing}");
        assert!(tls_config(None, true).is_ok());
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let max = Duration::from_secs(60);
        assert_eq!(backoff(1, max), Duration::from_secs(1));
        assert_eq!(backoff(2, max), Duration::from_secs(2));
        assert_eq!(backoff(5, max), Duration::from_secs(16));
        assert_eq!(backoff(7, max), max);
        assert_eq!(backoff(100, max), max);
    }

    #[test]
    fn tls_config_builds() {
        assert!(tls_config(None, false).is_ok());
        assert!(tls_config(None, true).is_ok());
        assert!(tls_config(Some("/nonexistent/ca.pem"), false).is_err());
    }
}
