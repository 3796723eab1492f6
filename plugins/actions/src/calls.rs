//! Audio and video calls (XEP-0166/0167/0176/0353): the frontend speaks SDP, perchd
//! Jingle. `sid` names a call.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{ActionInfo, Empty, NoArgs, action, info};

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
    Start = "call_start", StartArgs => Started
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
    Answer = "call_answer", AnswerArgs => Value
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
    Decline = "call_decline", DeclineArgs => Empty
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
    Candidates = "call_candidates", CandidatesArgs => Value
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
    Info = "call_info", InfoArgs => Empty
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
    End = "call_end", EndArgs => Empty
);

action!(
    /// A profile's calls, oldest first: `[{sid, peer, direction, state, media, …}]`.
    List = "call_list", NoArgs => Vec<Value>
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
