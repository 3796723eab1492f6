//! The life of a Jingle session, pending → active → ended, with the JMI states before
//! it (proposed, ringing), and which action from the peer fits which state.
//!
//! Why a pure function: every action the network sends goes through
//! [`check_incoming`] before it touches a call, so "what may come when" is written
//! once and tested without a network.

use super::xml::Action;
use crate::xep_0167::sdp::Role;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// JMI propose sent or received; no Jingle session yet.
    Proposed,
    /// JMI: the callee's device rings.
    Ringing,
    /// session-initiate sent or received, not accepted yet.
    Pending,
    /// session-accept sent or received.
    Active,
    Ended,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Proposed => "proposed",
            Self::Ringing => "ringing",
            Self::Pending => "pending",
            Self::Active => "active",
            Self::Ended => "ended",
        }
    }
}

/// Why an incoming action is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The session is over (or never was): `item-not-found` + `unknown-session`.
    UnknownSession,
    /// Not now: `unexpected-request` + `out-of-order`.
    OutOfOrder,
}

/// Whether `action`, received from the peer, fits a session in `state` where we are
/// `ours`. A session-initiate for an unknown sid is not checked here (it creates the
/// session); one for a known sid fits only a JMI call we accepted (proposed or ringing,
/// we the responder).
pub fn check_incoming(state: State, ours: Role, action: Action) -> Result<(), Refusal> {
    use Action as A;
    use State as S;
    match (state, action) {
        (S::Ended, _) => Err(Refusal::UnknownSession),
        (S::Proposed | S::Ringing, A::SessionInitiate) if ours == Role::Responder => Ok(()),
        (S::Proposed | S::Ringing, A::SessionTerminate) => Ok(()),
        (S::Proposed | S::Ringing, _) => Err(Refusal::OutOfOrder),
        (_, A::SessionInitiate) => Err(Refusal::OutOfOrder),
        (S::Pending, A::SessionAccept) if ours == Role::Initiator => Ok(()),
        (_, A::SessionAccept) => Err(Refusal::OutOfOrder),
        // We never send content-add, so nothing can be accepted or rejected.
        (_, A::ContentAccept | A::ContentReject) => Err(Refusal::OutOfOrder),
        (S::Pending | S::Active, _) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table() {
        use Action as A;
        use Refusal::*;
        use Role::*;
        use State as S;
        let cases = [
            (S::Pending, Initiator, A::SessionAccept, Ok(())),
            (S::Pending, Responder, A::SessionAccept, Err(OutOfOrder)),
            (S::Active, Initiator, A::SessionAccept, Err(OutOfOrder)),
            (S::Active, Responder, A::SessionInitiate, Err(OutOfOrder)),
            (S::Ringing, Responder, A::SessionInitiate, Ok(())),
            (S::Proposed, Initiator, A::SessionInitiate, Err(OutOfOrder)),
            (S::Proposed, Initiator, A::TransportInfo, Err(OutOfOrder)),
            (S::Pending, Responder, A::TransportInfo, Ok(())),
            (S::Pending, Initiator, A::SessionInfo, Ok(())),
            (S::Active, Initiator, A::SessionTerminate, Ok(())),
            (S::Active, Responder, A::ContentAdd, Ok(())),
            (S::Active, Responder, A::ContentRemove, Ok(())),
            (S::Active, Responder, A::ContentAccept, Err(OutOfOrder)),
            (
                S::Ended,
                Initiator,
                A::SessionTerminate,
                Err(UnknownSession),
            ),
            (S::Ended, Responder, A::TransportInfo, Err(UnknownSession)),
        ];
        for (state, role, action, want) in cases {
            assert_eq!(
                check_incoming(state, role, action),
                want,
                "{state:?} {role:?} {action:?}"
            );
        }
    }
}
