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
use tokio_xmpp::parsers::stanza_error::{DefinedCondition, ErrorType};

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

/// Fails a test that waits for what never comes (on the paused clock this passes
/// at once, instead of spinning through virtual hours).
async fn within<T>(what: &str, f: impl Future<Output = T>) -> T {
    match tokio::time::timeout(Duration::from_secs(120), f).await {
        Ok(v) => v,
        Err(_) => panic!("waited 120 s for {what}"),
    }
}

type Call = tokio::task::JoinHandle<(Result<Option<Element>>, Instant)>;

/// What an IQ of [`Harness::ask`] got, and when.
async fn answered(call: Call) -> (Result<Option<Element>>, Instant) {
    within("an IQ's outcome", call).await.expect("the call ran")
}

/// `d` is `want`, to the millisecond tick of tokio's timer (it rounds deadlines up).
fn about(d: Duration, want: Duration) -> bool {
    d >= want && d <= want + Duration::from_millis(1)
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
        frontends: None,
        connect_slots: Arc::new(tokio::sync::Semaphore::new(8)),
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
        let history = History::new(db.clone());
        let session = Session::spawn_over(
            connect::Transport::Memory(dial),
            creds,
            profile_id,
            config,
            Stores {
                history: history.clone(),
                roster: RosterStore::new(db),
                stored_roster: StoredRoster::default(),
            },
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
        within("a dial", self.dials.recv())
            .await
            .expect("the session dials")
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
        let st = within("a state", rx.wait_for(|s| s.state == want)).await;
        st.expect("the task runs").clone()
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

    /// Queues a chat message to bob, as `Daemon::send_message` does: stored with its
    /// stanza, then the outbox woken.
    async fn queue(&self, id: &str, body: &str) {
        let stanza = format!(
            "<message xmlns='jabber:client' to='bob@example.org' type='chat' id='{id}'>\
             <body>{body}</body></message>"
        );
        let m = crate::history::NewMessage {
            msg_id: id.into(),
            timestamp: crate::time::now_micros(),
            direction: Direction::Out,
            peer: "bob@example.org".into(),
            from: fake::ACCOUNT.into(),
            to: "bob@example.org".into(),
            kind: "chat".into(),
            body: body.into(),
            state: MessageState::Queued,
            origin_id: None,
            stanza_id: None,
            replaces: None,
            extra: Default::default(),
            apply: None,
        };
        self.history
            .enqueue(self.profile_id, m, stanza)
            .await
            .unwrap();
        self.session.wake_outbox();
    }

    /// The outbox: (id, state), oldest first.
    async fn outbox(&self) -> Vec<(String, MessageState)> {
        let rows = self.history.outbox(self.profile_id).await.unwrap();
        rows.into_iter().map(|m| (m.id, m.state)).collect()
    }

    /// The next `n` messages the session reported changed: (id, state).
    async fn updated(&mut self, n: usize) -> Vec<(String, MessageState)> {
        let mut out = vec![];
        while out.len() < n {
            match within("a message update", self.events.recv())
                .await
                .unwrap()
            {
                Event::MessageUpdated { message, .. } => out.push((message.id, message.state)),
                _ => continue,
            }
        }
        out
    }

    /// Sends an IQ get from a task of its own: the test plays the server meanwhile.
    fn ask(&self, to: Option<&str>) -> Call {
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
    let (a1, _) = answered(first).await;
    let (a2, _) = answered(second).await;
    assert_eq!(a1.unwrap().unwrap().name(), "one");
    assert_eq!(a2.unwrap().unwrap().name(), "two");
}

fn error_from(id: &str, kind: ErrorType) -> Iq {
    Iq::Error {
        from: None,
        to: None,
        id: id.into(),
        error: StanzaError::new(
            kind,
            DefinedCondition::InternalServerError,
            "en",
            "Database failure",
        ),
        payload: None,
    }
}

#[tokio::test]
async fn a_wait_error_is_asked_again_and_a_cancel_is_not() {
    let mut h = Harness::paused(config(), fake::PASSWORD).await;
    let mut server = h.connect(&Options::default()).await;
    // Temporary twice, then answered: the caller sees only the answer.
    let call = h.ask(None);
    for _ in 0..2 {
        let (id, ..) = server.next_iq().await;
        server.send(error_from(&id, ErrorType::Wait)).await;
    }
    let (id, ..) = server.next_iq().await;
    server.send(result_from(None, &id, None)).await;
    assert!(answered(call).await.0.unwrap().is_none());
    // Temporary three times: the third is given up, typed.
    let call = h.ask(None);
    for _ in 0..3 {
        let (id, ..) = server.next_iq().await;
        server.send(error_from(&id, ErrorType::Wait)).await;
    }
    match answered(call).await.0 {
        Err(Error::Stanza(e)) => assert_eq!(
            (e.condition.as_str(), e.kind.as_str()),
            ("internal-server-error", "wait")
        ),
        other => panic!("expected the wait error, got {other:?}"),
    }
    // Any other type, or a wait for something else than the server's own failure,
    // is final at once: the next request the server sees is a new call's.
    let call = h.ask(None);
    let (id, ..) = server.next_iq().await;
    server.send(error_from(&id, ErrorType::Cancel)).await;
    match answered(call).await.0 {
        Err(Error::Stanza(e)) => assert_eq!(e.kind, "cancel"),
        other => panic!("expected the cancel error, got {other:?}"),
    }
    let call = h.ask(None);
    let (id, ..) = server.next_iq().await;
    let mut timeout = error_from(&id, ErrorType::Wait);
    if let Iq::Error { error, .. } = &mut timeout {
        error.defined_condition = DefinedCondition::RemoteServerTimeout;
    }
    server.send(timeout).await;
    match answered(call).await.0 {
        Err(Error::Stanza(e)) => assert_eq!(e.condition, "remote-server-timeout"),
        other => panic!("expected the timeout, got {other:?}"),
    }
    let call = h.ask(Some("pubsub.example.org"));
    let (_, to, _) = server.next_iq().await;
    assert_eq!(to.unwrap().to_string(), "pubsub.example.org");
    drop(call);
}

#[tokio::test]
async fn an_unanswered_iq_times_out_and_its_late_answer_is_ignored() {
    let mut h = Harness::paused(config(), fake::PASSWORD).await;
    let mut server = h.connect(&Options::default()).await;
    let asked = Instant::now();
    let call = h.ask(None);
    let (id, ..) = server.next_iq().await;
    let (answer, at) = answered(call).await;
    match answer {
        Err(Error::Timeout(m)) => assert!(m.contains("within 10 s"), "{m}"),
        other => panic!("expected Timeout, got {other:?}"),
    }
    // At the deadline (the task sleeps until it; tokio rounds up to the millisecond).
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
    assert!(answered(call).await.0.unwrap().is_none());
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
    let (answer, _) = answered(call).await;
    assert_eq!(answer.unwrap().unwrap().name(), "real");
}

#[tokio::test]
async fn a_lost_connection_is_redialled_with_backoff() {
    let mut h = Harness::paused(config(), fake::PASSWORD).await;
    let server = h.connect(&Options::default()).await;
    h.states();
    let lost = Instant::now();
    drop(server);
    // The first dial at once, then after each refusal the delay of `backoff`.
    let mut at = vec![];
    for _ in 0..3 {
        let dial = h.dial().await;
        at.push(dial.at);
        dial.refuse();
    }
    let dial = h.dial().await;
    at.push(dial.at);
    let _server = Server::accept(dial.connect(), &Options::default())
        .await
        .unwrap();
    let st = h.wait_state(ConnectionState::Connected).await;
    assert!(at[0] - lost < connect::backoff(1, Duration::MAX));
    let gaps: Vec<_> = at.windows(2).map(|w| w[1] - w[0]).collect();
    let max = config().reconnect_max_delay;
    for (n, gap) in (1..).zip(&gaps) {
        assert!(about(*gap, connect::backoff(n, max)), "{gaps:?}");
    }
    assert_eq!(gaps.len(), 3);
    assert!(about(gaps[2], Duration::from_secs(4)), "{gaps:?}");
    // A fresh stream (no resumption): a new generation, bound anew.
    assert_eq!(st.generation, 2);
    assert!(st.bound_jid.is_some());
    let states = h.states();
    let (first, rest) = states.split_first().unwrap();
    assert_eq!(
        first,
        &(
            ConnectionState::Connecting,
            "connection lost; reconnecting".into()
        )
    );
    let retrying: Vec<_> = rest[..3].iter().map(|(s, r)| (*s, r.as_str())).collect();
    for ((state, reason), n) in retrying.iter().zip([1, 2, 4]) {
        assert_eq!(*state, ConnectionState::Connecting);
        assert!(reason.ends_with(&format!("retrying in {n} s")), "{reason}");
        assert!(reason.contains("refused by the test"), "{reason}");
    }
    assert_eq!(rest[3].0, ConnectionState::Connected);
}

#[tokio::test]
async fn a_refused_password_ends_the_session_without_retrying() {
    let mut h = Harness::paused(config(), "wrong").await;
    let refused = Server::accept(h.dial().await.connect(), &Options::default()).await;
    assert!(matches!(refused, Err(fake::Refused::Password)));
    let e = h.session.wait_ready().await.unwrap_err();
    assert!(matches!(e, Error::AuthenticationFailed { .. }), "{e:?}");
    let st = h.session.state();
    assert_eq!(st.state, ConnectionState::Disconnected);
    assert!(matches!(st.error, Some(ConnectError::Auth(_))), "{st:?}");
    // Ten minutes on, no second attempt: the task is gone.
    tokio::time::sleep(Duration::from_secs(600)).await;
    assert!(h.dials.try_recv().is_err());
    assert!(!h.session.is_running());
    let states = h.states();
    assert_eq!(states.len(), 2, "{states:?}");
    assert_eq!(states[1].0, ConnectionState::Disconnected);
    assert!(
        states[1].1.starts_with("AuthenticationFailed: "),
        "{states:?}"
    );
}

#[tokio::test]
async fn an_iq_in_flight_fails_when_the_session_gives_up() {
    let cfg = SessionConfig {
        reconnect_attempts: 2,
        ..config()
    };
    let mut h = Harness::paused(cfg, fake::PASSWORD).await;
    let mut server = h.connect(&Options::default()).await;
    let asked = Instant::now();
    let call = h.ask(None);
    server.next_iq().await;
    drop(server);
    h.dial().await.refuse();
    h.dial().await.refuse();
    let (answer, at) = answered(call).await;
    assert!(matches!(answer, Err(Error::NotConnected(_))), "{answer:?}");
    // At once (after the one backoff between the two attempts), not at the deadline.
    assert!(
        about(at - asked, connect::backoff(1, Duration::MAX)),
        "{:?}",
        at - asked
    );
    let st = h.wait_state(ConnectionState::Disconnected).await;
    assert!(
        matches!(st.error, Some(ConnectError::Unreachable(_))),
        "{st:?}"
    );
    assert!(h.dials.try_recv().is_err());
}

#[tokio::test]
async fn an_iq_asked_while_disconnected_goes_out_after_reconnecting() {
    let mut h = Harness::paused(config(), fake::PASSWORD).await;
    let server = h.connect(&Options::default()).await;
    drop(server);
    let dial = h.dial().await;
    assert_eq!(h.session.state().state, ConnectionState::Connecting);
    let call = h.ask(Some("pubsub.example.org"));
    // Let the session take the command before the connection comes.
    tokio::task::yield_now().await;
    let mut server = Server::accept(dial.connect(), &Options::default())
        .await
        .unwrap();
    let (id, to, _) = server.next_iq().await;
    assert_eq!(to.unwrap().to_string(), "pubsub.example.org");
    server
        .send(result_from(Some("pubsub.example.org"), &id, None))
        .await;
    assert!(answered(call).await.0.unwrap().is_none());
}

#[tokio::test]
async fn an_iq_in_flight_on_a_lost_stream_fails_once_a_fresh_stream_is_bound() {
    let mut h = Harness::paused(config(), fake::PASSWORD).await;
    let mut server = h.connect(&Options::default()).await;
    let asked = Instant::now();
    let call = h.ask(None);
    server.next_iq().await;
    drop(server);
    let _server = Server::accept(h.dial().await.connect(), &Options::default())
        .await
        .unwrap();
    h.wait_state(ConnectionState::Connected).await;
    // Its answer can no longer come (a fresh stream, nothing resumed): it fails
    // now, typed, rather than at its deadline.
    let (answer, at) = answered(call).await;
    assert!(matches!(answer, Err(Error::NotConnected(_))), "{answer:?}");
    assert!(at - asked < config().iq_timeout, "{:?}", at - asked);
}

/// Reads `ids.len()` messages from the client, which must be those, in order, then
/// the outbox's barrier (a ping): its id.
async fn read_batch(server: &mut Server, ids: &[&str]) -> String {
    for want in ids {
        match server.next_stanza().await {
            Some(Stanza::Message(m)) => {
                assert_eq!(m.id.map(|i| i.0).as_deref(), Some(*want));
                assert_eq!(m.to.unwrap().to_string(), "bob@example.org");
            }
            other => panic!("expected message {want}, got {other:?}"),
        }
    }
    match server.next_stanza().await {
        Some(Stanza::Iq(Iq::Get { id, payload, .. })) => {
            assert!(
                payload.is("ping", tokio_xmpp::parsers::ns::PING),
                "{payload:?}"
            );
            id
        }
        other => panic!("expected the outbox's ping, got {other:?}"),
    }
}

fn sent(ids: &[&str], state: MessageState) -> Vec<(String, MessageState)> {
    ids.iter().map(|i| ((*i).to_owned(), state)).collect()
}

#[tokio::test]
async fn the_outbox_sends_in_order_and_forgets_only_what_the_server_confirmed() {
    let mut h = Harness::start(config(), fake::PASSWORD).await;
    for (id, body) in [("m1", "one"), ("m2", "two"), ("m3", "three")] {
        h.queue(id, body).await;
    }
    let mut server = h.connect(&Options::default()).await;
    let ping = read_batch(&mut server, &["m1", "m2", "m3"]).await;
    // Written, not yet confirmed: all three are still the outbox's.
    assert_eq!(
        h.outbox().await,
        sent(&["m1", "m2", "m3"], MessageState::Sent)
    );
    server.send(result_from(None, &ping, None)).await;
    let acked = h.updated(3).await;
    assert_eq!(acked, sent(&["m1", "m2", "m3"], MessageState::Acked));
    assert!(h.outbox().await.is_empty());
    // One queued now goes out at once, on the same stream.
    h.queue("m4", "four").await;
    let ping = read_batch(&mut server, &["m4"]).await;
    server.send(result_from(None, &ping, None)).await;
    assert_eq!(h.updated(1).await, sent(&["m4"], MessageState::Acked));
}

#[tokio::test]
async fn a_batch_cut_by_a_lost_connection_is_sent_again_with_what_was_queued_meanwhile() {
    // An hour's IQ deadline: the batch can only come again within the test's
    // deadline if the lost stream's barrier fails at the fresh bind, not at its own.
    let cfg = SessionConfig {
        iq_timeout: Duration::from_secs(3600),
        ..config()
    };
    let mut h = Harness::start(cfg, fake::PASSWORD).await;
    h.queue("m1", "one").await;
    let mut server = h.connect(&Options::default()).await;
    read_batch(&mut server, &["m1"]).await;
    drop(server); // before confirming
    h.wait_state(ConnectionState::Connecting).await;
    h.queue("m2", "two").await;
    let mut outbox = sent(&["m1"], MessageState::Sent);
    outbox.extend(sent(&["m2"], MessageState::Queued));
    assert_eq!(h.outbox().await, outbox);
    let mut server = Server::accept(h.dial().await.connect(), &Options::default())
        .await
        .unwrap();
    // A fresh stream forgot m1: it goes again, first, with the same id, then m2.
    let ping = read_batch(&mut server, &["m1", "m2"]).await;
    server.send(result_from(None, &ping, None)).await;
    assert_eq!(h.updated(2).await, sent(&["m1", "m2"], MessageState::Acked));
    assert!(h.outbox().await.is_empty());
}

#[tokio::test]
async fn incoming_stanzas_go_up_in_order_each_acked_once_handled() {
    let opts = Options {
        sm: true,
        ..Options::default()
    };
    let mut h = Harness::paused(config(), fake::PASSWORD).await;
    let mut server = h.connect(&opts).await;
    assert!(matches!(
        h.inbox.recv().await,
        Some(Incoming::OwnPresence(_))
    ));
    assert!(matches!(h.inbox.recv().await, Some(Incoming::Started(_))));
    let from = |j: &str| Some(Jid::new(j).unwrap());
    let message = |id: &str| {
        let mut m = Message::chat(from(&server.jid.to_string()));
        m.from = from("bob@example.org/phone");
        m.id = Some(tokio_xmpp::parsers::message::Id(id.into()));
        m
    };
    let (m1, m2) = (message("m1"), message("m2"));
    let mut p1 = Presence::available();
    p1.from = from("bob@example.org/phone");
    p1.id = Some("p1".into());
    server.send(m1).await;
    server.send(p1).await;
    server.send(m2).await;
    // Read by the library, handled by nobody yet: only the roster answer (an IQ,
    // handled by the session at once) counts.
    server.request_ack().await;
    assert_eq!(server.next_ack().await, 1);
    let mut acks = vec![];
    for want in ["m1", "p1", "m2"] {
        match within("an incoming stanza", h.inbox.recv()).await {
            Some(Incoming::Message {
                message,
                ack,
                bound,
            }) => {
                assert_eq!(message.id.unwrap().0, want);
                assert_eq!(bound.unwrap().to_string(), server.jid.to_string());
                acks.push(ack);
            }
            Some(Incoming::Presence { presence, ack }) => {
                assert_eq!(presence.id.as_deref(), Some(want));
                acks.push(ack);
            }
            other => panic!("expected {want}, got {:?}", other.map(|i| i.what())),
        }
    }
    // Handled out of order: the count covers only an unbroken run from the start.
    let last = acks.pop().unwrap();
    acks.remove(0).handled(); // m1
    server.request_ack().await;
    assert_eq!(server.next_ack().await, 2);
    last.handled(); // m2, with p1 still open
    server.request_ack().await;
    assert_eq!(server.next_ack().await, 2);
    acks.remove(0).handled(); // p1
    server.request_ack().await;
    assert_eq!(server.next_ack().await, 4);
}

#[tokio::test]
async fn an_iq_in_flight_is_answered_on_the_resumed_stream() {
    let opts = Options {
        sm: true,
        ..Options::default()
    };
    let mut h = Harness::paused(config(), fake::PASSWORD).await;
    let mut server = h.connect(&opts).await;
    let call = h.ask(None);
    let (id, ..) = server.next_iq().await;
    let (jid, received) = (server.jid.clone(), server.received());
    drop(server);
    h.wait_state(ConnectionState::Connecting).await;
    let mut server = Server::resume(h.dial().await.connect(), jid.clone(), received).await;
    let st = h.wait_state(ConnectionState::Connected).await;
    // The same stream, resumed: no new generation, no new bind, no roster fetch.
    assert_eq!(st.generation, 1);
    assert_eq!(st.bound_jid.as_deref(), Some(jid.to_string().as_str()));
    server.send(result_from(None, &id, None)).await;
    let (answer, _) = answered(call).await;
    assert!(answer.unwrap().is_none());
    // The session goes on: the next request is answered too.
    let call = h.ask(None);
    let (id, ..) = server.next_iq().await;
    server.send(result_from(None, &id, None)).await;
    assert!(answered(call).await.0.unwrap().is_none());
}
