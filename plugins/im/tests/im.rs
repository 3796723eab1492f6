//! The messaging plugins' state machines against a mock host (no server, no bus):
//! each test plays the server and the core, and takes milliseconds.

// A test reads as one scenario, start to end: the one-screen rule is for the code
// under test (`[workspace.lints]`).
#![allow(clippy::too_many_lines)]

#[path = "im/blocking.rs"]
mod blocking;
#[path = "im/mam.rs"]
mod mam;
#[path = "im/message_actions.rs"]
mod message_actions;
#[path = "im/muc.rs"]
mod muc;
#[path = "im/read_state.rs"]
mod read_state;
