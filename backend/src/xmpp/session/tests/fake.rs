//! A scripted XMPP server for the session's unit tests: the other end of an
//! in-memory stream.
//!
//! It does what a test would otherwise repeat in every script: the stream header,
//! SASL PLAIN (checking the password), the restart, resource binding, XEP-0198
//! `<enable/>` when it offers it, and the answer to the roster request a session
//! sends after each fresh bind. Then the test drives it stanza by stanza. While it
//! reads, it answers what a live server answers without a script: the library's
//! liveness pings and `<r/>`.

use std::borrow::Cow;
use std::collections::{BTreeSet, VecDeque};
use std::io;

use futures::{SinkExt, StreamExt};
use perch_plugin_api::jid::{BareJid, FullJid};
use tokio::io::{BufStream, DuplexStream};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_xmpp::Stanza;
use tokio_xmpp::parsers::bind::{BindFeature, BindQuery, BindResponse};
use tokio_xmpp::parsers::iq::Iq;
use tokio_xmpp::parsers::stream_features::StreamFeatures;
use tokio_xmpp::parsers::{ns, roster, sasl, sm};
use tokio_xmpp::xmlstream::{
    ReadError, StreamHeader, Timeouts, XmlStream, XmppStreamElement, accept_stream,
};

type Xml = XmlStream<BufStream<DuplexStream>, XmppStreamElement>;

/// The account the fake server knows.
pub const ACCOUNT: &str = "alice@example.org";
pub const PASSWORD: &str = "secret";

/// One connection attempt of the session, waiting for the test to answer it.
pub struct Dial {
    /// When the session dialled (the runtime's clock: virtual under paused time).
    pub at: Instant,
    reply: oneshot::Sender<io::Result<DuplexStream>>,
}

impl Dial {
    /// The attempt fails as a refused TCP connection would.
    pub fn refuse(self) {
        let refused = io::Error::new(io::ErrorKind::ConnectionRefused, "refused by the test");
        let _ = self.reply.send(Err(refused));
    }

    /// The attempt connects; the server end of the stream, not negotiated yet.
    pub fn connect(self) -> DuplexStream {
        let (client, server) = tokio::io::duplex(64 * 1024);
        let _ = self.reply.send(Ok(client));
        server
    }
}

/// The session's side of the in-memory network: each call is one attempt, handed
/// to the test through `dials`.
pub fn network() -> (
    crate::xmpp::connect::MemoryDial,
    mpsc::UnboundedReceiver<Dial>,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    let dial: crate::xmpp::connect::MemoryDial = std::sync::Arc::new(move || {
        let tx = tx.clone();
        Box::pin(async move {
            let (reply, answer) = oneshot::channel();
            tx.send(Dial {
                at: Instant::now(),
                reply,
            })
            .map_err(|_| io::Error::other("the test is over"))?;
            answer
                .await
                .map_err(|_| io::Error::other("the test dropped the attempt"))?
        })
    });
    (dial, rx)
}

/// What the server offers and answers.
#[derive(Clone, Default)]
pub struct Options {
    /// Offer XEP-0198 (with resumption).
    pub sm: bool,
    /// The roster it answers with.
    pub roster: Vec<&'static str>,
}

/// How a negotiation ended on the server's side.
#[derive(Debug)]
pub enum Refused {
    /// The client sent a wrong password; `<failure/>` went back.
    Password,
}

/// A negotiated stream, from the server's end.
pub struct Server {
    xml: Xml,
    /// The full JID the session is bound to.
    pub jid: FullJid,
    /// Stanzas read since `<enabled/>` (what `<a/>` answers to `<r/>`).
    received: u32,
    /// Stanzas read while negotiating that were not the negotiation's (what the
    /// session queued while it was down): [`Server::next_stanza`] gives them first.
    backlog: VecDeque<Stanza>,
}

fn far() -> Timeouts {
    // The server never gives up first: the session's own deadlines are under test.
    Timeouts {
        read_timeout: std::time::Duration::from_secs(24 * 3600),
        response_timeout: std::time::Duration::from_secs(24 * 3600),
    }
}

async fn open(io: BufStream<DuplexStream>, features: &StreamFeatures) -> io::Result<Xml> {
    let accepted = accept_stream(io, ns::JABBER_CLIENT, far()).await?;
    let pending = accepted
        .send_header(StreamHeader {
            from: Some(Cow::Borrowed("example.org")),
            to: None,
            id: Some(Cow::Borrowed("fake-stream")),
        })
        .await?;
    pending.send_features(features).await
}

/// Reads the next element, skipping soft timeouts; `None` at the end.
async fn read(xml: &mut Xml) -> Option<XmppStreamElement> {
    loop {
        let next = tokio::time::timeout(std::time::Duration::from_secs(120), xml.next());
        match next.await.expect("the client sent nothing for 120 s") {
            Some(Err(ReadError::SoftTimeout)) => continue,
            Some(Ok(el)) => return Some(el),
            Some(Err(_)) | None => return None,
        }
    }
}

impl Server {
    /// Negotiates a fresh stream on `io` up to the answer to the session's roster
    /// request: SASL PLAIN, bind, and `<enable/>` if `opts.sm`.
    pub async fn accept(io: DuplexStream, opts: &Options) -> Result<Self, Refused> {
        let mut server = Self::login(io, opts.sm).await?;
        server.bind().await;
        if opts.sm {
            server.enable_sm().await;
        }
        server.answer_roster(&opts.roster).await;
        Ok(server)
    }

    /// Resumes (XEP-0198) the stream of a server that was bound to `jid` and had
    /// read `received` stanzas since `<enabled/>`: says it has all of those, so
    /// the client sends again only what came after.
    pub async fn resume(io: DuplexStream, jid: FullJid, received: u32) -> Self {
        let mut server = Self::login(io, true).await.expect("the password is right");
        match read(&mut server.xml).await {
            Some(XmppStreamElement::SM(sm::Nonza::Resume(r))) => {
                assert_eq!(r.previd.0, "fake-sm");
                let resumed = sm::Resumed {
                    h: received,
                    previd: r.previd,
                };
                server
                    .send_raw(XmppStreamElement::SM(sm::Nonza::Resumed(resumed)))
                    .await;
            }
            other => panic!("expected <resume/>, got {other:?}"),
        }
        server.jid = jid;
        server.received = received;
        server
    }

    /// Stanzas read since `<enabled/>` (see [`Server::resume`]).
    pub fn received(&self) -> u32 {
        self.received
    }

    /// The stream up to the features after SASL PLAIN: bind, and XEP-0198 if `sm`.
    async fn login(io: DuplexStream, sm: bool) -> Result<Self, Refused> {
        let features = StreamFeatures {
            sasl_mechanisms: BTreeSet::from(["PLAIN".to_owned()]),
            ..StreamFeatures::default()
        };
        let mut xml = open(BufStream::new(io), &features).await.expect("header");
        let auth = match read(&mut xml).await {
            Some(XmppStreamElement::Sasl(sasl::Nonza::Auth(auth))) => auth,
            other => panic!("expected <auth/>, got {other:?}"),
        };
        // PLAIN: authzid NUL authcid NUL password.
        let given = auth.data.rsplit(|b| *b == 0).next().unwrap_or_default();
        if given != PASSWORD.as_bytes() {
            let failure = sasl::Failure {
                defined_condition: sasl::DefinedCondition::NotAuthorized,
                texts: Default::default(),
            };
            let _ = xml
                .send(&XmppStreamElement::Sasl(sasl::Nonza::Failure(failure)))
                .await;
            return Err(Refused::Password);
        }
        let success = XmppStreamElement::Sasl(sasl::Nonza::Success(sasl::Success { data: vec![] }));
        let accepted = xml.accept_reset(&success).await.expect("restart");
        let features = StreamFeatures {
            bind: Some(BindFeature { required: true }),
            stream_management: sm.then_some(sm::StreamManagement { optional: false }),
            ..StreamFeatures::default()
        };
        let pending = accepted
            .send_header(StreamHeader {
                from: Some(Cow::Borrowed("example.org")),
                to: None,
                id: Some(Cow::Borrowed("fake-stream-2")),
            })
            .await
            .expect("header after SASL");
        Ok(Self {
            xml: pending.send_features(&features).await.expect("features"),
            jid: BareJid::new(ACCOUNT)
                .unwrap()
                .with_resource_str("x")
                .unwrap(),
            received: 0,
            backlog: VecDeque::new(),
        })
    }

    async fn bind(&mut self) {
        let Some(Stanza::Iq(Iq::Set { id, payload, .. })) = self.next_stanza().await else {
            panic!("expected the bind request");
        };
        let query = BindQuery::try_from(payload).expect("a bind request");
        let resource = query.resource.expect("perchd asks for a resource");
        self.jid = BareJid::new(ACCOUNT)
            .unwrap()
            .with_resource_str(&resource)
            .unwrap();
        let answer = BindResponse {
            jid: self.jid.clone(),
        };
        self.send(Iq::from_result(id, Some(answer))).await;
    }

    async fn enable_sm(&mut self) {
        match read(&mut self.xml).await {
            Some(XmppStreamElement::SM(sm::Nonza::Enable(e))) => {
                let enabled = sm::Enabled {
                    id: Some(sm::StreamId("fake-sm".into())),
                    location: None,
                    max: None,
                    resume: e.resume,
                };
                self.send_raw(XmppStreamElement::SM(sm::Nonza::Enabled(enabled)))
                    .await;
                self.received = 0;
            }
            other => panic!("expected <enable/>, got {other:?}"),
        }
    }

    async fn answer_roster(&mut self, items: &[&str]) {
        let id = loop {
            match self.wire_stanza().await {
                Some(Stanza::Iq(Iq::Get { id, payload, .. }))
                    if payload.is("query", ns::ROSTER) =>
                {
                    break id;
                }
                Some(other) => self.backlog.push_back(other),
                None => panic!("the stream ended before the roster request"),
            }
        };
        let items = items
            .iter()
            .map(|j| roster::Item {
                jid: BareJid::new(j).unwrap(),
                name: None,
                subscription: roster::Subscription::Both,
                ask: roster::Ask::None,
                groups: vec![],
                approved: None,
            })
            .collect();
        let roster = roster::Roster { ver: None, items };
        self.send(Iq::from_result(id, Some(roster))).await;
    }

    pub async fn send_raw(&mut self, el: XmppStreamElement) {
        self.xml.send(&el).await.expect("the client reads");
    }

    /// Sends a stanza to the client.
    pub async fn send(&mut self, stanza: impl Into<Stanza>) {
        self.send_raw(XmppStreamElement::Stanza(stanza.into()))
            .await;
    }

    /// Asks the client for an acknowledgement (XEP-0198 `<r/>`).
    pub async fn request_ack(&mut self) {
        self.send_raw(XmppStreamElement::SM(sm::Nonza::Req(sm::R)))
            .await;
    }

    /// The next stanza from the client (`None`: the stream ended), answering the
    /// library's liveness pings and `<r/>`s and noting `<a/>`s meanwhile.
    pub async fn next_stanza(&mut self) -> Option<Stanza> {
        match self.backlog.pop_front() {
            Some(s) => Some(s),
            None => self.wire_stanza().await,
        }
    }

    /// The next stanza read from the stream (see [`Server::next_stanza`]).
    async fn wire_stanza(&mut self) -> Option<Stanza> {
        loop {
            match read(&mut self.xml).await? {
                XmppStreamElement::Stanza(Stanza::Iq(Iq::Get { id, .. }))
                    if id.starts_with("xmpp-rs-stanzastream-liveness-probe") =>
                {
                    self.received += 1;
                    let pong = Iq::Result {
                        from: None,
                        to: None,
                        id,
                        payload: None,
                    };
                    self.send(pong).await;
                }
                XmppStreamElement::Stanza(s) => {
                    self.received += 1;
                    return Some(s);
                }
                XmppStreamElement::SM(sm::Nonza::Req(_)) => {
                    let h = self.received;
                    self.send_raw(XmppStreamElement::SM(sm::Nonza::Ack(sm::A { h })))
                        .await;
                }
                // An acknowledgement of our own accord (see `Server::next_ack`).
                XmppStreamElement::SM(sm::Nonza::Ack(_)) => {}
                other => panic!("unexpected from the client: {other:?}"),
            }
        }
    }

    /// Reads until the client sends an `<a/>`: its `h`.
    pub async fn next_ack(&mut self) -> u32 {
        loop {
            match read(&mut self.xml).await.expect("the stream ended") {
                XmppStreamElement::SM(sm::Nonza::Ack(a)) => return a.h,
                XmppStreamElement::SM(sm::Nonza::Req(_)) => {
                    let h = self.received;
                    self.send_raw(XmppStreamElement::SM(sm::Nonza::Ack(sm::A { h })))
                        .await;
                }
                XmppStreamElement::Stanza(s) => {
                    self.received += 1;
                    self.backlog.push_back(s);
                }
                other => panic!("expected <a/>, got {other:?}"),
            }
        }
    }

    /// The next IQ get or set from the client: its id, recipient and payload.
    pub async fn next_iq(&mut self) -> (String, Option<perch_plugin_api::jid::Jid>, bool) {
        match self.next_stanza().await {
            Some(Stanza::Iq(Iq::Get { id, to, .. })) => (id, to, false),
            Some(Stanza::Iq(Iq::Set { id, to, .. })) => (id, to, true),
            other => panic!("expected an IQ request, got {other:?}"),
        }
    }
}
