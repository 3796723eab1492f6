//! The session's state machine, tested over in-memory streams with a scripted
//! server ([`fake`]) on the other end: connecting, IQ matching and deadlines,
//! reconnection with backoff, the fatal refused password, the outbox, and what goes
//! up with its XEP-0198 acknowledgement.
//!
//! Why this way: end-to-end tests against Prosody cannot make a server drop a
//! connection at a chosen stanza, refuse exactly three dials, or let time run
//! forward; these do, deterministically and in milliseconds. The session is started
//! through [`Session::spawn_over`] with [`connect::Transport::Memory`] (test builds
//! only): the test plays the network, answering each dial. Perch never logs in
//! without TLS, and its STARTTLS step needs a real TLS server, so the in-memory
//! stream stands for the channel *after* TLS: everything from there on is the code
//! perchd runs (the XML limits, the acknowledgement gate, the stream header, SASL
//! PLAIN, the restart, binding, stream management, the session task and the outbox).
//!
//! Time: the tests of deadlines and backoff run on tokio's paused clock, so a
//! 10-second IQ deadline or a 4-second backoff passes at once and is measured
//! exactly. It is paused once the database is open, not from the start
//! (`start_paused`): SQLite works on threads of its own, and while it opens the
//! file a paused clock runs ahead to the connection pool's timeout (the open fails
//! with `PoolTimedOut`). For the same reason the outbox tests, which wait for
//! SQLite at every step, run on the real clock.

mod fake;

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use perch_plugin_api::jid::{BareJid, Jid};
use perch_plugin_api::{ConnectionState, Direction, MessageState};
use tokio::sync::{broadcast, mpsc};
use tokio::time::Instant;
use tokio_xmpp::Stanza;
use tokio_xmpp::minidom::Element;
use tokio_xmpp::parsers::iq::Iq;
use tokio_xmpp::parsers::message::Message;
use tokio_xmpp::parsers::presence::Presence;

use super::*;
use crate::profiles::{NewProfile, Profiles};
use crate::secret::{Password, Sealer};
use fake::{Dial, Options, Server};

/// Claims no IQ request (the session answers `service-unavailable`).
struct NoHandlers;

impl IqHandlers for NoHandlers {
    fn claim(&self, _iq: &IncomingIq) -> Option<BoxFuture<'static, IqAnswer>> {
        None
    }
}

fn config() -> SessionConfig {
    SessionConfig {
        resource: "perch".into(),
        connect_attempts: 3,
        reconnect_attempts: 0,
        connect_timeout: Duration::from_secs(15),
        reconnect_max_delay: Duration::from_secs(60),
        iq_timeout: Duration::from_secs(10),
        limits: limits::Limits::default(),
    }
}

/// A session over the in-memory network, and what a test watches of it.
struct Harness {
    session: Session,
    dials: mpsc::UnboundedReceiver<Dial>,
    inbox: mpsc::UnboundedReceiver<Incoming>,
    events: broadcast::Receiver<Event>,
    history: History,
    profile_id: i32,
    _dir: tempfile::TempDir,
}

impl Harness {
    async fn start(config: SessionConfig, password: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::db::open_sqlite(&dir.path().join("perch.db"))
            .await
            .unwrap();
        let sealer = Arc::new(Sealer::load_or_create(&dir.path().join("key")).unwrap());
        let profiles = Profiles::new(db.clone(), sealer);
        profiles
            .create(NewProfile {
                name: "alice".into(),
                jid: fake::ACCOUNT.into(),
                password: Password::new(fake::PASSWORD.into()),
                server: None,
                ca_file: None,
                insecure: false,
                autoconnect: false,
            })
            .await
            .unwrap();
        let profile_id = profiles.get("alice").await.unwrap().id;
        let creds = Credentials {
            profile: "alice".into(),
            jid: BareJid::new(fake::ACCOUNT).unwrap(),
            password: Password::new(password.into()),
            server: None,
            ca_file: None,
            insecure: false,
            priority: 0,
        };
        let (dial, dials) = fake::network();
        let (events_tx, events) = broadcast::channel(1024);
        let (inbox_tx, inbox) = mpsc::unbounded_channel();
        let history = History::new(db);
        let session = Session::spawn_over(
            connect::Transport::Memory(dial),
            creds,
            profile_id,
            config,
            history.clone(),
            events_tx,
            Upstream {
                inbox: inbox_tx,
                iq: Arc::new(NoHandlers),
            },
        );
        Self {
            session,
            dials,
            inbox,
            events,
            history,
            profile_id,
            _dir: dir,
        }
    }

    /// [`Harness::start`], then the clock paused: it moves only when every task
    /// waits, straight to the next deadline.
    async fn paused(config: SessionConfig, password: &str) -> Self {
        let h = Self::start(config, password).await;
        tokio::time::pause();
        h
    }

    async fn dial(&mut self) -> Dial {
        self.dials.recv().await.expect("the session dials")
    }

    /// Answers the next dial with a fresh stream, up to the session being connected.
    async fn connect(&mut self, opts: &Options) -> Server {
        let io = self.dial().await.connect();
        let server = Server::accept(io, opts)
            .await
            .expect("the password is right");
        self.wait_state(ConnectionState::Connected).await;
        server
    }

    async fn wait_state(&self, want: ConnectionState) -> StateInfo {
        let mut rx = self.session.state.clone();
        let st = rx
            .wait_for(|s| s.state == want)
            .await
            .expect("the task runs");
        st.clone()
    }

    /// The connection states reported so far, with their reasons.
    fn states(&mut self) -> Vec<(ConnectionState, String)> {
        let mut out = vec![];
        while let Ok(e) = self.events.try_recv() {
            if let Event::ConnectionState { state, reason, .. } = e {
                out.push((state, reason));
            }
        }
        out
    }

    /// Sends an IQ get from a task of its own: the test plays the server meanwhile.
    fn ask(&self, to: Option<&str>) -> tokio::task::JoinHandle<(Result<Option<Element>>, Instant)> {
        let s = self.session.clone();
        let to = to.map(|j| Jid::new(j).unwrap());
        tokio::spawn(async move {
            let answer = s.iq(to, false, ping()).await;
            (answer, Instant::now())
        })
    }
}

fn ping() -> Element {
    Element::builder("ping", tokio_xmpp::parsers::ns::PING).build()
}

fn result_from(from: Option<&str>, id: &str, payload: Option<Element>) -> Iq {
    Iq::Result {
        from: from.map(|j| Jid::new(j).unwrap()),
        to: None,
        id: id.into(),
        payload,
    }
}

#[tokio::test]
async fn connecting_then_connected_with_the_bound_jid() {
    let mut h = Harness::paused(config(), fake::PASSWORD).await;
    assert_eq!(h.session.state().state, ConnectionState::Connecting);
    let opts = Options {
        roster: vec!["bob@example.org"],
        ..Options::default()
    };
    let server = h.connect(&opts).await;
    h.session.wait_ready().await.unwrap();
    let st = h.session.state();
    let bound = server.jid.to_string();
    assert!(bound.starts_with("alice@example.org/perch."), "{bound}");
    assert_eq!(st.bound_jid.as_deref(), Some(bound.as_str()));
    assert_eq!(st.generation, 1);
    assert!(st.error.is_none());
    assert_eq!(h.session.bound_jid().unwrap().to_string(), bound);
    let states: Vec<_> = h.states().into_iter().map(|(s, _)| s).collect();
    assert_eq!(
        states,
        [ConnectionState::Connecting, ConnectionState::Connected]
    );
    let roster: Vec<_> = h.session.roster().into_iter().map(|i| i.jid).collect();
    assert_eq!(roster, ["bob@example.org"]);
    // Up: our presence to send (after the fresh bind), then the start, bound.
    assert!(matches!(
        h.inbox.recv().await,
        Some(Incoming::OwnPresence(_))
    ));
    match h.inbox.recv().await {
        Some(Incoming::Started(jid)) => assert_eq!(jid, bound),
        other => panic!("expected Started, got {:?}", other.map(|i| i.what())),
    }
}

#[tokio::test]
async fn iq_answers_are_matched_by_id() {
    let mut h = Harness::paused(config(), fake::PASSWORD).await;
    let mut server = h.connect(&Options::default()).await;
    let first = h.ask(None);
    let (id1, ..) = server.next_iq().await;
    let second = h.ask(Some("pubsub.example.org"));
    let (id2, to2, _) = server.next_iq().await;
    assert_ne!(id1, id2);
    assert_eq!(to2.unwrap().to_string(), "pubsub.example.org");
    // Answered in the other order, each with a payload of its own.
    let mark = |n: &str| Element::builder(n, "urn:test").build();
    server
        .send(result_from(
            Some("pubsub.example.org"),
            &id2,
            Some(mark("two")),
        ))
        .await;
    server
        .send(result_from(None, &id1, Some(mark("one"))))
        .await;
    let (a1, _) = first.await.unwrap();
    let (a2, _) = second.await.unwrap();
    assert_eq!(a1.unwrap().unwrap().name(), "one");
    assert_eq!(a2.unwrap().unwrap().name(), "two");
}

#[tokio::test]
async fn an_unanswered_iq_times_out_and_its_late_answer_is_ignored() {
    let mut h = Harness::paused(config(), fake::PASSWORD).await;
    let mut server = h.connect(&Options::default()).await;
    let asked = Instant::now();
    let call = h.ask(None);
    let (id, ..) = server.next_iq().await;
    let (answer, at) = call.await.unwrap();
    match answer {
        Err(Error::Timeout(m)) => assert!(m.contains("within 10 s"), "{m}"),
        other => panic!("expected Timeout, got {other:?}"),
    }
    // At the deadline, to the tick of the task's clock (500 ms).
    let waited = at - asked;
    assert!(
        waited >= Duration::from_secs(10) && waited <= Duration::from_millis(10_500),
        "{waited:?}"
    );
    // The late answer harms nothing: the session stays up and answers the next.
    server.send(result_from(None, &id, None)).await;
    let call = h.ask(None);
    let (id2, ..) = server.next_iq().await;
    assert_ne!(id, id2);
    server.send(result_from(None, &id2, None)).await;
    assert!(call.await.unwrap().0.unwrap().is_none());
    assert_eq!(h.session.state().state, ConnectionState::Connected);
}

#[tokio::test]
async fn an_answer_from_the_wrong_sender_is_not_taken() {
    let mut h = Harness::paused(config(), fake::PASSWORD).await;
    let mut server = h.connect(&Options::default()).await;
    let call = h.ask(Some("pubsub.example.org"));
    let (id, ..) = server.next_iq().await;
    let forged = Element::builder("forged", "urn:test").build();
    server
        .send(result_from(Some("mallory@example.org"), &id, Some(forged)))
        .await;
    // Nor does an answer with no sender, which only our own server may send.
    let bare = Element::builder("bare", "urn:test").build();
    server.send(result_from(None, &id, Some(bare))).await;
    let real = Element::builder("real", "urn:test").build();
    server
        .send(result_from(Some("pubsub.example.org"), &id, Some(real)))
        .await;
    let (answer, _) = call.await.unwrap();
    assert_eq!(answer.unwrap().unwrap().name(), "real");
}
