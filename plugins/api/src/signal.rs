//! Typed signals: declaring and emitting a `perch_actions::Signal`.
//!
//! Why: a signal's name, doc and payload are declared once, in `perch-actions`, and
//! read by frontends as that payload's type. The plugin emitting it builds the struct,
//! not a JSON object by hand; JSON appears only where the host hands it on.

use perch_actions::Signal;

/// Declaring and emitting typed signals: `host.declare(signals::ChatState)`, then
/// `host.signal(signals::ChatState, profile, &payload)`.
pub trait Signals {
    /// Declares signal `S` with its doc.
    fn declare<S: Signal>(&self, signal: S);

    /// Emits signal `S` for `profile`.
    fn signal<S: Signal>(&self, signal: S, profile: &str, payload: &S::Payload);
}

impl<H: crate::Host + ?Sized> Signals for H {
    fn declare<S: Signal>(&self, _signal: S) {
        self.declare_signal(S::NAME, S::DOC);
    }

    fn signal<S: Signal>(&self, _signal: S, profile: &str, payload: &S::Payload) {
        match serde_json::to_value(payload) {
            Ok(data) => self.emit(S::NAME, profile, data),
            Err(e) => {
                tracing::warn!(signal = S::NAME, %profile, error = %e, "signal payload not serialisable")
            }
        }
    }
}
