//! The outbox: hands queued messages to the server, in order, and marks them
//! confirmed only once the server has them.
//!
//! Why this way: a message the user sent is stored with its stanza before anyone
//! is told it is queued (`History::enqueue`); from there, nothing may lose it. A
//! stanza written to a stream is not yet at the server: the connection can die
//! with it in a buffer, and a fresh stream (no XEP-0198 resumption: the server
//! restarted, or its session state expired) forgets it. So after each batch the
//! outbox asks the server something (an XEP-0199 ping) on the same stream: a server
//! processes one stream's stanzas in order (RFC 6120 §10.1), so its answer proves
//! the batch arrived, with or without stream management. Only then do the messages
//! leave the outbox (`acked`). A batch whose stream was replaced before the answer
//! is sent again on the new one, in order, with the same ids; the receiver
//! recognises a copy by its XEP-0359 origin-id. At least once, and in order, is
//! what this layer can promise; the ids make it exactly once for receivers that
//! honour them (Perch does).
//!
//! The task only talks to its session through the command channel, like any client
//! of the session: it never runs inside the session task, which must keep reading
//! the stream while the database works.

use std::sync::Arc;
use std::time::Duration;

use perch_plugin_api::ConnectionState;
use perch_plugin_api::jid::BareJid;
use tokio::sync::{Notify, mpsc, oneshot, watch};
use tokio_xmpp::Stanza;
use tokio_xmpp::minidom::Element;
use tokio_xmpp::parsers::message::Message;

use super::{Command, StateInfo};
use crate::error::Error;
use crate::events::{Event, EventSender};
use crate::history::History;

/// Messages written between two confirmations.
const BATCH: u64 = 100;

/// A batch the server did not confirm on a stream that stays up is sent again
/// after this long.
const UNANSWERED: Duration = Duration::from_secs(30);

/// After a storage error, how long before trying again.
const RETRY: Duration = Duration::from_secs(5);

pub(super) struct Outbox {
    pub profile: String,
    pub profile_id: i32,
    pub own: BareJid,
    pub history: History,
    pub events: EventSender,
    pub cmd: mpsc::WeakSender<Command>,
    pub state: watch::Receiver<StateInfo>,
    pub wake: Arc<Notify>,
}

/// How one round went.
enum Round {
    /// Nothing to send.
    Empty,
    /// A batch went out and was confirmed.
    Confirmed,
    /// The stream went away (or was replaced) before the server confirmed: wait for
    /// the next one.
    Interrupted,
}

impl Outbox {
    pub(super) async fn run(mut self) {
        loop {
            // A live stream first.
            let generation = match self
                .state
                .wait_for(|s| s.state == ConnectionState::Connected)
                .await
            {
                Ok(s) => s.generation,
                Err(_) => return, // the session is gone
            };
            // Boxed: the database's futures are large, and an idle outbox waits
            // below, outside of a round.
            match Box::pin(self.round(generation)).await {
                Ok(Round::Confirmed) => continue,
                Ok(Round::Empty) => {
                    tokio::select! {
                        _ = self.wake.notified() => {}
                        changed = self.state.changed() => if changed.is_err() { return },
                    }
                }
                Ok(Round::Interrupted) => {
                    // Until the stream changes (lost, or a new one): then the loop
                    // waits for it to be up and sends again. A server that only
                    // failed to answer in time gets the batch again after a while.
                    let still = |s: &StateInfo| {
                        s.state == ConnectionState::Connected && s.generation == generation
                    };
                    let changed =
                        tokio::time::timeout(UNANSWERED, self.state.wait_for(|s| !still(s))).await;
                    if let Ok(Err(_)) = changed {
                        return;
                    }
                }
                Err(e) => {
                    tracing::error!(profile = %self.profile, jid = %self.own, error = %e, "outbox: storage failed; trying again");
                    tokio::time::sleep(RETRY).await;
                }
            }
            if self.cmd.upgrade().is_none() {
                return;
            }
        }
    }

    /// Sends one batch and waits for the server's confirmation.
    async fn round(&mut self, generation: u64) -> Result<Round, Error> {
        let batch = self.history.claim_outbox(self.profile_id, BATCH).await?;
        if batch.is_empty() {
            return Ok(Round::Empty);
        }
        let Some(cmd) = self.cmd.upgrade() else {
            return Ok(Round::Interrupted);
        };
        for entry in &batch {
            let message = entry
                .stanza
                .parse::<Element>()
                .map_err(|e| e.to_string())
                .and_then(|el| Message::try_from(el).map_err(|e| e.to_string()));
            let message = match message {
                Ok(m) => m,
                Err(e) => {
                    // Written by this code from a parsed stanza: cannot happen short
                    // of a damaged database. Confirming it drops it from the outbox
                    // rather than blocking every message behind it.
                    tracing::error!(profile = %self.profile, id = %entry.msg_id, error = %e, "outbox: a stored stanza does not parse; dropped");
                    continue;
                }
            };
            let (tx, rx) = oneshot::channel();
            let sent = cmd
                .send(Command::Send {
                    stanza: Box::new(Stanza::Message(message)),
                    reply: Some(tx),
                })
                .await;
            if sent.is_err() || rx.await.is_err() {
                return Ok(Round::Interrupted);
            }
        }
        // The barrier: an answer (even an error) proves the batch arrived.
        let (tx, rx) = oneshot::channel();
        let ping = Element::builder("ping", tokio_xmpp::parsers::ns::PING).build();
        if cmd
            .send(Command::Iq {
                to: None,
                set: false,
                payload: Box::new(ping),
                reply: tx,
            })
            .await
            .is_err()
        {
            return Ok(Round::Interrupted);
        }
        drop(cmd);
        let answered = match rx.await {
            Ok(Ok(_)) | Ok(Err(Error::Stanza(_) | Error::Xmpp(_))) => true,
            Ok(Err(_)) | Err(_) => false,
        };
        let same_stream = self.state.borrow().generation == generation;
        if !(answered && same_stream) {
            tracing::debug!(profile = %self.profile, batch = batch.len(), answered, same_stream, "outbox: batch not confirmed; sent again on the next stream");
            return Ok(Round::Interrupted);
        }
        let rows: Vec<i64> = batch.iter().map(|e| e.row).collect();
        let done = self.history.confirm_sent(&rows).await?;
        tracing::debug!(profile = %self.profile, confirmed = done.len(), "outbox: batch confirmed by the server");
        for message in done {
            let _ = self.events.send(Event::MessageUpdated {
                profile: self.profile.clone(),
                message,
            });
        }
        Ok(Round::Confirmed)
    }
}
