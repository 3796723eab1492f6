//! Audio and video calls (XEP-0166/0167/0176/0353): the frontend speaks SDP, perchd
//! Jingle. `sid` names a call.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::decl::req;
use crate::{ActionInfo, Empty, NoArgs, ParamDecl, ParamType, action, info};

const SID: ParamDecl = req("sid", ParamType::String, "the call's session id");

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartArgs {
    /// A bare JID (its available resource that does Jingle RTP) or a full JID.
    pub peer: String,
    /// The local SDP offer.
    pub sdp: String,
    /// audio, video (default: the offer's m-lines).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub media: Vec<String>,
    /// Ring every device by XEP-0353 first.
    #[serde(default)]
    pub jmi: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Started {
    pub sid: String,
    /// Whom perchd calls: the resource it chose (the bare JID while a JMI proposal
    /// is open).
    pub peer: String,
}

action!(
    /// Calls a contact with an SDP offer.
    Start = "call_start", StartArgs => Started,
    "Calls a contact with an SDP offer; returns {sid}",
    [
        req(
            "peer",
            Jid,
            "whom to call: a bare JID (its available resource that does Jingle RTP) or a full JID",
        ),
        req("sdp", String, "the local SDP offer"),
        opt("media", List, "audio, video (default: the offer's m-lines)"),
        opt(
            "jmi",
            Boolean,
            "ring every device by XEP-0353 first instead of a direct session-initiate",
        ),
    ]
);

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnswerArgs {
    pub sid: String,
    /// The local SDP answer; none: accept a JMI proposal (proceed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sdp: Option<String>,
}

action!(
    /// Accepts an incoming call: `{}`, or `{"proceeded": true}` for a JMI proposal.
    Answer = "call_answer", AnswerArgs => Value,
    "Accepts an incoming call: without sdp a JMI proposal (proceed), with sdp the offer (session-accept)",
    [
        SID,
        opt("sdp", String, "the local SDP answer to call_incoming's offer"),
    ]
);

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeclineArgs {
    pub sid: String,
    /// decline (default) or busy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

action!(
    /// Declines an incoming call.
    Decline = "call_decline", DeclineArgs => Empty,
    "Declines an incoming call",
    [SID, opt("reason", String, "decline (default) or busy")]
);

/// One local ICE candidate, `candidate` without `a=`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Candidate {
    pub mline_index: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mid: Option<String>,
    pub candidate: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CandidatesArgs {
    pub sid: String,
    /// Empty, or one candidate with an empty `candidate`: the end of candidates.
    pub candidates: Vec<Candidate>,
}

action!(
    /// Adds local ICE candidates: `{dropped}`, how many could not be used.
    Candidates = "call_candidates", CandidatesArgs => Value,
    "Adds local ICE candidates (sent once the session is signalled)",
    [
        SID,
        req(
            "candidates",
            Array,
            "[{mline_index, mid, candidate}], candidate without a=; empty = end of candidates",
        ),
    ]
);

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InfoArgs {
    pub sid: String,
    /// ringing, mute, unmute, active, hold or unhold.
    pub info: String,
    /// audio or video (mute/unmute one content).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media: Option<String>,
}

action!(
    /// Tells the peer: ringing, mute, unmute, active, hold, unhold.
    Info = "call_info", InfoArgs => Empty,
    "Tells the peer: ringing, mute, unmute, active, hold, unhold",
    [
        SID,
        req("info", String, "ringing, mute, unmute, active, hold or unhold"),
        opt("media", String, "audio or video (mute/unmute one content)"),
    ]
);

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndArgs {
    pub sid: String,
    /// A XEP-0166 reason (default success).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

action!(
    /// Ends (hangs up, cancels) a call.
    End = "call_end", EndArgs => Empty,
    "Ends (hangs up, cancels) a call",
    [
        SID,
        opt("reason", String, "a XEP-0166 reason (default success)"),
        opt("text", String, "a human-readable explanation"),
    ]
);

action!(
    /// A profile's calls, oldest first: `[{sid, peer, direction, state, media, …}]`.
    List = "call_list", NoArgs => Vec<Value>,
    "A profile's calls (ongoing and ended since perchd started), oldest first",
    [],
    no_session
);

pub(crate) fn all() -> Vec<ActionInfo> {
    vec![
        info::<Start>(),
        info::<Answer>(),
        info::<Decline>(),
        info::<Candidates>(),
        info::<Info>(),
        info::<End>(),
        info::<List>(),
    ]
}
