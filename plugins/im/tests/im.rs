//! The messaging plugins' state machines against a mock host (no server, no bus):
//! each test plays the server and the core, and takes milliseconds.

#[path = "im/mam.rs"]
mod mam;
#[path = "im/muc.rs"]
mod muc;
