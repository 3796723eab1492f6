//! `perch-call`: the media frontend of perchd's Jingle calls.
//!
//! Why a crate of its own: perchd does all the XMPP signalling and converts between
//! SDP and Jingle; a frontend only carries the media with a WebRTC stack
//! (doc/calls.rst, doc/perch-call.rst). This one uses GStreamer's webrtcbin, and it is the only crate of
//! the workspace that links GStreamer, so nothing else needs it to build.
//!
//! - [`media`]: the pipeline (webrtcbin, sources, sinks, counters);
//! - [`nice`]: the one libnice call gstreamer-rs does not wrap;
//! - [`call`]: the call's signalling with perchd over the native bridge (plugin
//!   `xep_0167` actions and signals) and what is printed at hang-up;
//! - [`error`]: every way a call fails, typed.

pub mod call;
pub mod error;
pub mod media;
pub mod nice;

pub use error::CallError;
