//! XEP-0167: Jingle RTP sessions, the elements and their SDP form. The plugin that
//! runs calls is in `perch-plugins-calls`; a frontend (perch-call's tests) converts SDP
//! with [`sdp`] directly.

pub mod rtp;
pub mod sdp;
