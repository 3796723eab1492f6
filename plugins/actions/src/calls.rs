//! Audio and video calls (XEP-0166/0167/0176/0353): the frontend speaks SDP, perchd
//! Jingle. `sid` names a call.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::decl::req;
use crate::signals::signal;
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

// Signals, which perchd emits under plugin name `xep_0167`.

/// A contact rings us by XEP-0353.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    pub sid: String,
    /// The caller's full JID.
    pub peer: String,
    /// audio, video.
    pub media: Vec<String>,
}

signal!(
    /// A contact rings us by JMI; accept with `call_answer {sid}`.
    Proposed = "call_proposed", Proposal,
    "a contact rings us by JMI: {sid, peer, media}; accept with call_answer {sid}"
);

/// An incoming call's offer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offer {
    pub sid: String,
    /// The caller's full JID.
    pub peer: String,
    /// audio, video.
    pub media: Vec<String>,
    /// The remote SDP offer.
    pub sdp: String,
    /// Whether it follows a JMI proposal we accepted.
    pub jmi: bool,
}

signal!(
    /// An incoming call's offer; answer with `call_answer` or `call_decline`.
    Incoming = "call_incoming", Offer,
    "an incoming call's offer: {sid, peer, media, sdp, jmi}; answer with call_answer or call_decline"
);

/// The remote SDP of a call.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Setup {
    pub sid: String,
    /// Our role: `initiator` (the caller gets the answer).
    pub role: String,
    pub sdp: String,
}

signal!(
    /// The remote SDP of a call (the caller gets the answer).
    SetUp = "call_setup", Setup,
    "the remote SDP of a call: {sid, role, sdp} (the caller gets the answer)"
);

/// Remote ICE candidates.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteCandidates {
    pub sid: String,
    pub candidates: Vec<Candidate>,
}

signal!(
    /// Remote ICE candidates arrived (same name as the action that sends ours).
    CandidatesReceived = "call_candidates", RemoteCandidates,
    "remote ICE candidates: {sid, candidates: [{mline_index, mid, candidate}]}"
);

/// The peer's session-info.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerInfo {
    pub sid: String,
    /// ringing, mute, unmute, active, hold or unhold.
    pub info: String,
    /// audio or video, for a mute/unmute of one content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media: Option<String>,
}

signal!(
    /// The peer's session-info (XEP-0167 §7), or its JMI ringing.
    InfoReceived = "call_info", PeerInfo,
    "the peer's session-info: {sid, info, media?}"
);

/// A call's new state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateChange {
    pub sid: String,
    /// proposed, ringing, pending, active or ended.
    pub state: String,
}

signal!(
    /// A call changed state.
    StateChanged = "call_state", StateChange,
    "a call changed state: {sid, state}"
);

/// How a call ended.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ending {
    pub sid: String,
    /// A XEP-0166 reason.
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

signal!(
    /// A call ended.
    Ended = "call_ended", Ending,
    "a call ended: {sid, reason, text?}"
);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The payloads are the JSON the calls plugin built by hand before: optional
    /// fields absent, not null.
    #[test]
    fn signal_payloads_keep_their_json() {
        let ended = Ending {
            sid: "s".into(),
            reason: "success".into(),
            text: None,
        };
        assert_eq!(
            serde_json::to_value(ended).expect("ok"),
            json!({"sid": "s", "reason": "success"})
        );
        let info = PeerInfo {
            sid: "s".into(),
            info: "mute".into(),
            media: Some("audio".into()),
        };
        assert_eq!(
            serde_json::to_value(info).expect("ok"),
            json!({"sid": "s", "info": "mute", "media": "audio"})
        );
        let remote = RemoteCandidates {
            sid: "s".into(),
            candidates: vec![Candidate {
                mline_index: 1,
                mid: Some("0".into()),
                candidate: "candidate:1 1 udp 1 10.0.0.1 9 typ host".into(),
            }],
        };
        assert_eq!(
            serde_json::to_value(remote).expect("ok"),
            json!({"sid": "s", "candidates": [{"mline_index": 1, "mid": "0",
                   "candidate": "candidate:1 1 udp 1 10.0.0.1 9 typ host"}]})
        );
    }
}
