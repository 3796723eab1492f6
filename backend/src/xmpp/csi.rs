//! XEP-0352 Client State Indication: the server is told when nobody is looking.
//!
//! While no frontend is listening (and the user turned `[xmpp] csi` on), the server
//! may hold back what is not urgent (presences, chat states) and send it in one go
//! later, which saves wake-ups and traffic. Messages are never held.
//!
//! Why through the byte stream: `<active/>` and `<inactive/>` are nonzas, and
//! tokio-xmpp 6's stanza stream writes stanzas only. They go out through the stream
//! wrapper (`limits.rs`), between two outgoing elements, as our own XEP-0198
//! acknowledgements do: at the next write, or, when nothing is being written, from the
//! wrapper's read side, which the stream's task polls all the time (a change of state
//! wakes it). No stanza is sent for it: a ping's answer would count as important and
//! flush what the server holds.
//!
//! The server starts every new stream active (XEP-0352 §4); a nonza is only ever
//! written once the stream is bound ([`Csi::arm`]), never during negotiation.

use std::sync::Mutex;
use std::task::Waker;

/// The state the session wants the server to know, and what it was told.
#[derive(Debug, Default)]
pub struct Csi {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// The session wants the server to treat us as inactive.
    wanted_inactive: bool,
    /// What the server was last told on this connection (it starts active).
    sent_inactive: bool,
    /// The stream is bound: nonzas may be written.
    armed: bool,
    /// The stream's reader, woken when a nonza is owed.
    reader: Option<Waker>,
}

const ACTIVE: &[u8] = b"<active xmlns='urn:xmpp:csi:0'/>";
const INACTIVE: &[u8] = b"<inactive xmlns='urn:xmpp:csi:0'/>";

impl Csi {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A new connection: the server thinks us active, and nothing may be written
    /// until the stream is bound.
    pub fn new_connection(&self) {
        let mut s = self.lock();
        s.sent_inactive = false;
        s.armed = false;
    }

    /// The stream is bound (or resumed) on a server offering CSI; `false` when it
    /// does not (nothing is ever written then).
    pub fn arm(&self, offered: bool) {
        self.lock().armed = offered;
    }

    /// Sets the wanted state; true when a nonza is now owed (the stream's reader is
    /// woken to write it).
    pub fn want_inactive(&self, inactive: bool) -> bool {
        let mut s = self.lock();
        s.wanted_inactive = inactive;
        let owed = s.armed && s.wanted_inactive != s.sent_inactive;
        if owed && let Some(w) = &s.reader {
            w.wake_by_ref();
        }
        owed
    }

    /// The stream's reader waits: wake it with `w` when a nonza is owed.
    pub fn park(&self, w: &Waker) {
        let mut s = self.lock();
        if !s.reader.as_ref().is_some_and(|r| r.will_wake(w)) {
            s.reader = Some(w.clone());
        }
    }

    /// The nonza to write now, if one is owed; it counts as sent.
    pub fn owed(&self) -> Option<&'static [u8]> {
        let mut s = self.lock();
        if !s.armed || s.wanted_inactive == s.sent_inactive {
            return None;
        }
        s.sent_inactive = s.wanted_inactive;
        Some(if s.sent_inactive { INACTIVE } else { ACTIVE })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_is_owed_before_the_stream_is_bound_nor_twice() {
        let c = Csi::default();
        c.new_connection();
        assert!(!c.want_inactive(true), "not armed yet");
        assert_eq!(c.owed(), None);
        c.arm(true);
        assert_eq!(c.owed(), Some(INACTIVE));
        assert_eq!(c.owed(), None, "once");
        assert!(c.want_inactive(false));
        assert_eq!(c.owed(), Some(ACTIVE));
        assert!(!c.want_inactive(false), "already told");
    }

    #[test]
    fn a_new_connection_starts_active_and_a_server_without_csi_gets_nothing() {
        let c = Csi::default();
        c.arm(true);
        c.want_inactive(true);
        assert_eq!(c.owed(), Some(INACTIVE));
        c.new_connection();
        c.arm(true);
        assert_eq!(c.owed(), Some(INACTIVE), "told again on the new stream");
        c.new_connection();
        c.arm(false);
        assert_eq!(c.owed(), None, "not offered");
    }
}
