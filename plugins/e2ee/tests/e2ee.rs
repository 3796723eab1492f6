//! The e2ee plugins against a mock host (no server, no bus): each test plays the
//! server and the contact, and takes milliseconds.

// A test reads as one scenario, start to end.
#![allow(clippy::too_many_lines)]

#[path = "e2ee/xep_0384.rs"]
mod xep_0384;
