//! XEP-0167: Jingle RTP sessions — audio and video calls, signalled here, carried by a
//! frontend.
//!
//! Why the split: perchd does all the XMPP (XEP-0166 sessions, XEP-0176 transport,
//! XEP-0320 DTLS fingerprints, XEP-0353 ringing) and speaks SDP to frontends, which
//! run a WebRTC stack and carry the media. The bridge API (actions `call_*`, signals
//! of plugin `xep_0167`) and the call flow are in `doc/calls.rst`.
//!
//! Ongoing calls are kept in memory (a session that ends takes its calls with it);
//! ended ones are also stored (table `call`), so `call_list` shows them after a
//! restart.

pub use perch_codec::xep_0167::{rtp, sdp};
pub mod store;

use perch_actions::Empty;
use perch_actions::NoArgs;
use perch_actions::Signal;
use perch_actions::calls::{
    self as actions, AnswerArgs, Candidate as CallCandidate, CandidatesArgs, DeclineArgs, EndArgs,
    Ending, InfoArgs, Offer, PeerInfo, Proposal, RemoteCandidates, Setup, StartArgs, Started,
    StateChange,
};
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use futures::FutureExt;
use futures::future::BoxFuture;
use perch_plugin_api::action::jid_arg;
use perch_plugin_api::jid::Jid;
use perch_plugin_api::minidom::Element;
use perch_plugin_api::parsers::presence::Type as PresenceType;
use perch_plugin_api::points::{
    IncomingMessage, IncomingPresence, MessageReceived, PresenceReceived,
};
use perch_plugin_api::{
    BuildResult, Flow, Host, HostError, IqAnswer, IqRequest, Plugin, PluginError, PluginFactory,
    PluginInfo, Serve, Signals, StanzaError,
};
use serde_json::{Value, json};

use perch_codec::dom::Attr;
use perch_codec::xep_0166::session::{Refusal, State, check_incoming};
use perch_codec::xep_0166::{self as jingle, Action, Content, Group, Jingle, Reason};
use perch_codec::xep_0176::{Candidate, Transport};
use perch_codec::xep_0353::{self as jmi, Jmi, Kind};
use sdp::Role;

pub const IMPORT_NAME: &str = "XEP-0167";
/// The plugin name of the call signals on the bridge (`PluginSignal`).
pub const SIGNAL_PLUGIN: &str = "xep_0167";

const NS_DISCO_INFO: &str = "http://jabber.org/protocol/disco#info";

/// The features a Jingle RTP endpoint announces (XEP-0166 §11, XEP-0167 §11, …).
pub const FEATURES: &[&str] = &[
    jingle::xml::NS,
    rtp::NS,
    rtp::NS_AUDIO,
    rtp::NS_VIDEO,
    perch_codec::xep_0176::NS,
    perch_codec::xep_0320::NS,
    jmi::NS,
    rtp::NS_RTCP_FB,
    rtp::NS_HDREXT,
    rtp::NS_SSMA,
    jingle::xml::NS_GROUPING,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Outgoing,
    Incoming,
}

/// A local candidate waiting for the session to be signalled.
#[derive(Debug, Clone)]
struct Queued {
    content: String,
    candidate: Candidate,
}

#[derive(Debug, Clone)]
struct CallState {
    profile: String,
    sid: String,
    /// The full JID once known (the bare one while a JMI proposal is open).
    peer: Jid,
    direction: Direction,
    state: State,
    media: Vec<String>,
    jmi: bool,
    /// JMI: we (callee) sent proceed.
    proceeded: bool,
    created: SystemTime,
    connected: Option<SystemTime>,
    ended: Option<SystemTime>,
    end_reason: Option<String>,
    end_text: Option<String>,
    /// The session's contents in order (from the offer): names and media.
    contents: Vec<Content>,
    group: Option<Group>,
    /// Our own contents (from our SDP): ICE credentials for transport-info.
    local: Vec<Content>,
    /// An outgoing JMI call's offer, sent once the callee proceeds.
    offer: Option<sdp::Converted>,
    queued: Vec<Queued>,
    /// Our session-initiate or session-accept went out: candidates go straight.
    signalled: bool,
}

impl CallState {
    fn role(&self) -> Role {
        match self.direction {
            Direction::Outgoing => Role::Initiator,
            Direction::Incoming => Role::Responder,
        }
    }

    fn to_json(&self) -> Value {
        let ts = |t: SystemTime| humantime::format_rfc3339_micros(t).to_string();
        let mut v = json!({
            "sid": self.sid,
            "peer": self.peer.to_string(),
            "direction": match self.direction { Direction::Outgoing => "outgoing", Direction::Incoming => "incoming" },
            "state": self.state.as_str(),
            "media": self.media,
            "jmi": self.jmi,
            "created": ts(self.created),
        });
        let m = v.as_object_mut().expect("an object");
        if let Some(c) = self.connected {
            m.insert("connected".into(), json!(ts(c)));
            let until = self.ended.unwrap_or_else(SystemTime::now);
            let d = until.duration_since(c).unwrap_or_default().as_secs_f64();
            m.insert("duration_s".into(), json!(d));
        }
        if let Some(e) = self.ended {
            m.insert("ended".into(), json!(ts(e)));
        }
        if let Some(r) = &self.end_reason {
            m.insert("end_reason".into(), json!(r));
        }
        if let Some(t) = &self.end_text {
            m.insert("end_text".into(), json!(t));
        }
        v
    }
}

type Key = (String, String);

/// The calls plugin.
pub struct Calls {
    host: Arc<dyn Host>,
    calls: Mutex<HashMap<Key, CallState>>,
    /// profile → bare JID → available full JIDs.
    presences: Mutex<HashMap<String, HashMap<String, BTreeSet<String>>>>,
    /// How long an outgoing call may ring unanswered (`ring_timeout_s`).
    ring_timeout: Duration,
}

/// The end reason of a call that lost a XEP-0353 tie-break.
pub const TIE_BREAK: &str = "tie-break";

/// The default of option `ring_timeout_s`.
pub const RING_TIMEOUT: Duration = Duration::from_secs(60);

impl std::fmt::Debug for Calls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Calls").finish_non_exhaustive()
    }
}

fn bad(msg: impl Into<String>) -> HostError {
    HostError::BadArgument(msg.into())
}

fn stanza(condition: &str, text: String) -> HostError {
    HostError::Stanza(StanzaError::new(condition, Some(text)))
}

fn bare(j: &Jid) -> String {
    j.to_bare().to_string()
}

impl Calls {
    fn host(&self) -> Arc<dyn Host> {
        self.host.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, CallState>> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn get(&self, profile: &str, sid: &str) -> Result<CallState, HostError> {
        self.lock()
            .get(&(profile.to_owned(), sid.to_owned()))
            .cloned()
            .ok_or_else(|| {
                stanza(
                    "item-not-found",
                    format!("no call {sid:?} on profile {profile:?}"),
                )
            })
    }

    fn update<R>(
        &self,
        profile: &str,
        sid: &str,
        f: impl FnOnce(&mut CallState) -> R,
    ) -> Option<R> {
        self.lock()
            .get_mut(&(profile.to_owned(), sid.to_owned()))
            .map(f)
    }

    fn signal<S: Signal>(&self, signal: S, profile: &str, payload: S::Payload) {
        self.host.signal(signal, profile, &payload);
    }

    fn state_changed(&self, profile: &str, sid: &str, state: State) {
        let change = StateChange {
            sid: sid.to_owned(),
            state: state.as_str().to_owned(),
        };
        self.signal(actions::StateChanged, profile, change);
    }

    fn set_state(&self, profile: &str, sid: &str, state: State) {
        let changed = self
            .update(profile, sid, |c| {
                // An ended call stays ended: a reply that was in flight when the
                // peer declined or hung up (session-initiate's result arriving
                // after the terminate) must not bring it back to pending.
                if c.state == State::Ended {
                    return false;
                }
                let changed = c.state != state;
                c.state = state;
                if state == State::Active && c.connected.is_none() {
                    c.connected = Some(SystemTime::now());
                }
                changed
            })
            .unwrap_or(false);
        if changed {
            tracing::info!(%profile, %sid, state = state.as_str(), "call state");
            self.state_changed(profile, sid, state);
        }
    }

    /// Marks a call ended (once) and tells frontends.
    fn finish(&self, profile: &str, sid: &str, reason: &str, text: Option<String>) {
        let peer = self.update(profile, sid, |c| {
            if c.state == State::Ended {
                return None;
            }
            c.state = State::Ended;
            c.ended = Some(SystemTime::now());
            c.end_reason = Some(reason.to_owned());
            c.end_text = text.clone();
            c.queued.clear();
            Some(c.peer.to_string())
        });
        let Some(Some(peer)) = peer else { return };
        self.store_ended(profile, sid);
        tracing::info!(%profile, %peer, %sid, reason, text = text.as_deref().unwrap_or(""), "call ended");
        self.state_changed(profile, sid, State::Ended);
        let ending = Ending {
            sid: sid.to_owned(),
            reason: reason.to_owned(),
            text,
        };
        self.signal(actions::Ended, profile, ending);
    }

    /// Writes an ended call to the database, off the caller's path.
    fn store_ended(&self, profile: &str, sid: &str) {
        let Ok(c) = self.get(profile, sid) else {
            return;
        };
        let host = self.host();
        let (profile, sid) = (profile.to_owned(), sid.to_owned());
        tokio::spawn(async move {
            let data = c.to_json();
            let created = data["created"].as_str().unwrap_or_default().to_owned();
            let saved = match host.profile_id(&profile).await {
                Ok(id) => store::save(host.store(), id, &sid, &created, &data).await,
                Err(e) => Err(e),
            };
            if let Err(e) = saved {
                tracing::warn!(%profile, %sid, error = %e, "storing an ended call failed");
            }
        });
    }

    async fn own_jid(&self, host: &Arc<dyn Host>, profile: &str) -> Result<Jid, HostError> {
        host.bound_jid(profile)
            .await
            .ok_or_else(|| HostError::NotConnected(profile.to_owned()))
    }

    async fn send_jingle(&self, profile: &str, to: &Jid, j: &Jingle) -> Result<(), HostError> {
        let host = self.host();
        tracing::debug!(%profile, peer = %to, sid = %j.sid, action = j.action.as_str(), "sending Jingle");
        host.iq(profile, Some(to.clone()), true, j.to_element())
            .await
            .map(|_| ())
    }

    async fn send_jmi(
        &self,
        profile: &str,
        to: &Jid,
        m: &Jmi,
        store: bool,
    ) -> Result<(), HostError> {
        let host = self.host();
        let mut b = Element::builder("message", "jabber:client")
            .a("to", to.to_string())
            .a("type", "chat")
            .a("id", perch_plugin_api::ids::random_hex(9))
            .append(m.to_element());
        if store {
            b = b.append(Element::builder("store", jmi::NS_HINTS).build());
        }
        tracing::debug!(%profile, peer = %to, sid = %m.id, what = m.kind.name(), "sending JMI");
        host.send(profile, b.build()).await
    }

    /// Whether `jid` (a full JID) is a Jingle RTP endpoint, by disco#info.
    async fn supports_rtp(&self, profile: &str, jid: &Jid) -> Result<bool, HostError> {
        let host = self.host();
        let q = Element::builder("query", NS_DISCO_INFO).build();
        let answer = host.iq(profile, Some(jid.clone()), false, q).await?;
        Ok(answer.is_some_and(|a| {
            a.children()
                .any(|f| f.name() == "feature" && f.attr("var") == Some(rtp::NS))
        }))
    }

    /// Where a direct session-initiate goes: a full JID of the peer that does RTP.
    async fn pick_target(&self, profile: &str, peer: &Jid) -> Result<Jid, HostError> {
        let candidates: Vec<Jid> = if peer.resource().is_some() {
            vec![peer.clone()]
        } else {
            let p = self.presences.lock().unwrap_or_else(|e| e.into_inner());
            p.get(profile)
                .and_then(|m| m.get(&bare(peer)))
                .map(|s| s.iter().filter_map(|j| Jid::new(j).ok()).collect())
                .unwrap_or_default()
        };
        if candidates.is_empty() {
            return Err(stanza(
                "recipient-unavailable",
                format!(
                    "{peer} has no available resource (offline, or not sharing presence with us)"
                ),
            ));
        }
        let mut last_error = None;
        for c in &candidates {
            match self.supports_rtp(profile, c).await {
                Ok(true) => return Ok(c.clone()),
                Ok(false) => {}
                Err(e) => last_error = Some((c.clone(), e)),
            }
        }
        match last_error {
            Some((c, e)) if candidates.len() == 1 => Err(stanza(
                "recipient-unavailable",
                format!("{c} cannot be reached: {e}"),
            )),
            _ => Err(stanza(
                "feature-not-implemented",
                format!(
                    "no available resource of {peer} does Jingle RTP calls ({})",
                    rtp::NS
                ),
            )),
        }
    }

    // -------------------------------------------------------------------------------
    // actions
    // -------------------------------------------------------------------------------

    async fn call_start(
        self: Arc<Self>,
        profile: String,
        a: StartArgs,
    ) -> Result<Started, HostError> {
        let peer = jid_arg("peer", &a.peer)?;
        let offer = sdp::to_jingle(&a.sdp, Role::Initiator, Role::Initiator)
            .map_err(|e| bad(format!("call_start: the offer: {e}")))?;
        for d in &offer.dropped {
            tracing::debug!(%profile, %peer, dropped = %d, "offer: left out of Jingle");
        }
        let mut media = a.media;
        if media.is_empty() {
            media = offer
                .contents
                .iter()
                .filter_map(|c| c.description.as_ref().map(|d| d.media.clone()))
                .collect();
        }
        if let Some(m) = media.iter().find(|m| *m != "audio" && *m != "video") {
            return Err(bad(format!("call_start: media {m:?}: audio or video")));
        }
        let sid = perch_plugin_api::ids::random_hex(12);
        let use_jmi = a.jmi;
        let target = if use_jmi {
            peer.to_bare().into()
        } else {
            self.pick_target(&profile, &peer).await?
        };
        let mut state = CallState {
            profile: profile.clone(),
            sid: sid.clone(),
            peer: target.clone(),
            direction: Direction::Outgoing,
            state: if use_jmi {
                State::Proposed
            } else {
                State::Pending
            },
            media: media.clone(),
            jmi: use_jmi,
            proceeded: false,
            created: SystemTime::now(),
            connected: None,
            ended: None,
            end_reason: None,
            end_text: None,
            contents: offer.contents.clone(),
            group: offer.group.clone(),
            local: offer.contents.clone(),
            offer: None,
            queued: Vec::new(),
            signalled: false,
        };
        if use_jmi {
            state.offer = Some(offer);
            self.lock().insert((profile.clone(), sid.clone()), state);
            tracing::info!(%profile, peer = %target, %sid, "call proposed (JMI)");
            let m = Jmi::new(Kind::Propose(media), &sid);
            if let Err(e) = self.send_jmi(&profile, &target, &m, true).await {
                self.finish(&profile, &sid, "connectivity-error", Some(e.to_string()));
                return Err(e);
            }
        } else {
            self.lock().insert((profile.clone(), sid.clone()), state);
            tracing::info!(%profile, peer = %target, %sid, "call started (session-initiate)");
            self.initiate(&profile, &sid, &target, offer).await?;
        }
        self.clone().unanswered_after(profile, sid.clone());
        Ok(Started {
            sid,
            peer: target.to_string(),
        })
    }

    /// Ends our call `sid` with reason `timeout` if it is still not answered after
    /// the ring timeout.
    fn unanswered_after(self: Arc<Self>, profile: String, sid: String) {
        let wait = self.ring_timeout;
        tokio::spawn(async move {
            tokio::time::sleep(wait).await;
            let Ok(c) = self.get(&profile, &sid) else {
                return;
            };
            if matches!(c.state, State::Proposed | State::Ringing | State::Pending) {
                tracing::info!(%profile, peer = %c.peer, %sid, "call not answered in time");
                let text = format!("not answered within {} s", wait.as_secs_f64());
                if let Err(e) = self.terminate(&c, "timeout", Some(text)).await {
                    tracing::warn!(%profile, %sid, error = %e, "ending an unanswered call failed");
                }
            }
        });
    }

    /// Sends session-initiate for an outgoing call, then its queued candidates.
    async fn initiate(
        &self,
        profile: &str,
        sid: &str,
        to: &Jid,
        offer: sdp::Converted,
    ) -> Result<(), HostError> {
        let host = self.host();
        let me = self.own_jid(&host, profile).await?;
        let mut j = Jingle::new(Action::SessionInitiate, sid);
        j.initiator = Some(me.to_string());
        j.contents = offer.contents;
        j.group = offer.group;
        match self.send_jingle(profile, to, &j).await {
            Ok(()) => {
                self.set_state(profile, sid, State::Pending);
                self.signalled(profile, sid).await;
                Ok(())
            }
            Err(e) => {
                let reason = match &e {
                    HostError::Stanza(s)
                        if s.condition == "service-unavailable"
                            || s.condition == "feature-not-implemented" =>
                    {
                        "unsupported-applications"
                    }
                    _ => "connectivity-error",
                };
                self.finish(profile, sid, reason, Some(e.to_string()));
                Err(e)
            }
        }
    }

    /// Our initiate/accept is out: send what waited.
    async fn signalled(&self, profile: &str, sid: &str) {
        let queued = self
            .update(profile, sid, |c| {
                c.signalled = true;
                std::mem::take(&mut c.queued)
            })
            .unwrap_or_default();
        if !queued.is_empty()
            && let Err(e) = self.send_candidates(profile, sid, queued).await
        {
            tracing::warn!(%profile, %sid, error = %e, "sending queued candidates failed");
        }
    }

    async fn send_candidates(
        &self,
        profile: &str,
        sid: &str,
        list: Vec<Queued>,
    ) -> Result<(), HostError> {
        let c = self.get(profile, sid)?;
        let mut j = Jingle::new(Action::TransportInfo, sid);
        for q in list {
            if let Some(content) = j.contents.iter_mut().find(|x| x.name == q.content) {
                if let Some(t) = content.transport.as_mut() {
                    t.candidates.push(q.candidate);
                }
                continue;
            }
            let local = c.local.iter().find(|l| l.name == q.content);
            let creds = local.and_then(|l| l.transport.as_ref());
            j.contents.push(Content {
                creator: c
                    .contents
                    .iter()
                    .find(|x| x.name == q.content)
                    .map_or("initiator".into(), |x| x.creator.clone()),
                name: q.content.clone(),
                transport: Some(Transport {
                    ufrag: creds.and_then(|t| t.ufrag.clone()),
                    pwd: creds.and_then(|t| t.pwd.clone()),
                    candidates: vec![q.candidate],
                    fingerprint: None,
                }),
                ..Default::default()
            });
        }
        tracing::debug!(%profile, peer = %c.peer, %sid, contents = j.contents.len(), "sending local candidates");
        self.send_jingle(profile, &c.peer, &j).await
    }

    async fn call_answer(
        self: Arc<Self>,
        profile: String,
        a: AnswerArgs,
    ) -> Result<Value, HostError> {
        let (profile, sid) = (profile.as_str(), a.sid.as_str());
        let c = self.get(profile, sid)?;
        if c.direction != Direction::Incoming {
            return Err(bad(format!(
                "call {sid} is outgoing: only an incoming call is answered"
            )));
        }
        match (c.state, a.sdp.as_deref()) {
            (State::Proposed | State::Ringing, _) if !c.proceeded => {
                // JMI: accept the proposal; the caller sends session-initiate next.
                self.update(profile, sid, |c| c.proceeded = true);
                tracing::info!(%profile, peer = %c.peer, %sid, "JMI proposal accepted (proceed)");
                self.send_jmi(profile, &c.peer, &Jmi::new(Kind::Proceed, sid), false)
                    .await?;
                // Our other devices stop ringing.
                let host = self.host();
                let me = self.own_jid(&host, profile).await?;
                self.send_jmi(
                    profile,
                    &me.to_bare().into(),
                    &Jmi::new(Kind::Accept, sid),
                    false,
                )
                .await?;
                Ok(json!({"proceeded": true}))
            }
            (State::Proposed | State::Ringing, _) => Err(bad(format!(
                "call {sid}: already accepted; waiting for the caller's session-initiate (call_incoming)"
            ))),
            (State::Pending, None) => Err(bad(format!(
                "call_answer: call {sid} needs the answer \"sdp\""
            ))),
            (State::Pending, Some(answer)) => {
                let conv = sdp::to_jingle(answer, Role::Responder, Role::Initiator)
                    .map_err(|e| bad(format!("call_answer: the answer: {e}")))?;
                for d in &conv.dropped {
                    tracing::debug!(%profile, %sid, dropped = %d, "answer: left out of Jingle");
                }
                let names: Vec<&str> = c.contents.iter().map(|x| x.name.as_str()).collect();
                let mut contents = conv.contents;
                for a in &mut contents {
                    let Some(offered) = c.contents.iter().find(|o| o.name == a.name) else {
                        return Err(bad(format!(
                            "call_answer: the answer has mid {:?}, the offer only {names:?}",
                            a.name
                        )));
                    };
                    a.creator = offered.creator.clone();
                }
                let host = self.host();
                let me = self.own_jid(&host, profile).await?;
                let mut j = Jingle::new(Action::SessionAccept, sid);
                j.responder = Some(me.to_string());
                j.contents = contents.clone();
                j.group = conv.group;
                self.update(profile, sid, |c| c.local = contents);
                if let Err(e) = self.send_jingle(profile, &c.peer, &j).await {
                    self.finish(profile, sid, "connectivity-error", Some(e.to_string()));
                    return Err(e);
                }
                tracing::info!(%profile, peer = %c.peer, %sid, "call answered (session-accept)");
                self.set_state(profile, sid, State::Active);
                self.signalled(profile, sid).await;
                Ok(json!({}))
            }
            (s, _) => Err(bad(format!(
                "call {sid} is {}: nothing to answer",
                s.as_str()
            ))),
        }
    }

    async fn terminate(
        &self,
        c: &CallState,
        reason: &str,
        text: Option<String>,
    ) -> Result<(), HostError> {
        let profile = c.profile.as_str();
        let sid = c.sid.as_str();
        let mut r = Reason::new(reason);
        r.text = text.clone();
        let sent = match c.state {
            State::Ended => return Err(bad(format!("call {sid} has already ended"))),
            State::Proposed | State::Ringing => {
                // No Jingle session yet: JMI retract (caller) or reject (callee).
                let kind = match c.direction {
                    Direction::Outgoing => Kind::Retract,
                    Direction::Incoming => Kind::Reject,
                };
                let mut m = Jmi::new(kind, sid);
                m.reason = Some(r);
                let to = if c.direction == Direction::Outgoing {
                    c.peer.to_bare().into()
                } else {
                    c.peer.clone()
                };
                self.send_jmi(profile, &to, &m, c.direction == Direction::Outgoing)
                    .await
            }
            State::Pending | State::Active => {
                let mut j = Jingle::new(Action::SessionTerminate, sid);
                j.reason = Some(r.clone());
                let res = self.send_jingle(profile, &c.peer, &j).await;
                if c.jmi {
                    let mut m = Jmi::new(Kind::Finish, sid);
                    m.reason = Some(r);
                    let _ = self.send_jmi(profile, &c.peer, &m, true).await;
                }
                res
            }
        };
        self.finish(profile, sid, reason, text);
        if let Err(e) = sent {
            tracing::warn!(%profile, %sid, error = %e, "telling the peer the call ended failed");
        }
        Ok(())
    }

    async fn call_decline(
        self: Arc<Self>,
        profile: String,
        a: DeclineArgs,
    ) -> Result<Empty, HostError> {
        let sid = a.sid.as_str();
        let c = self.get(&profile, sid)?;
        if c.direction != Direction::Incoming {
            return Err(bad(format!("call {sid} is outgoing: end it with call_end")));
        }
        if c.state == State::Active {
            return Err(bad(format!(
                "call {sid} is already active: end it with call_end"
            )));
        }
        let reason = a.reason.as_deref().unwrap_or("decline");
        if reason != "decline" && reason != "busy" {
            return Err(bad(format!(
                "call_decline: reason {reason:?}: decline or busy"
            )));
        }
        self.terminate(&c, reason, None).await?;
        Ok(Empty {})
    }

    async fn call_end(self: Arc<Self>, profile: String, a: EndArgs) -> Result<Empty, HostError> {
        let c = self.get(&profile, &a.sid)?;
        let reason = a.reason.as_deref().unwrap_or("success");
        if !jingle::xml::REASONS.contains(&reason) {
            return Err(bad(format!(
                "call_end: reason {reason:?} is not one of {}",
                jingle::xml::REASONS.join(", ")
            )));
        }
        self.terminate(&c, reason, a.text).await?;
        Ok(Empty {})
    }

    async fn call_candidates(
        self: Arc<Self>,
        profile: String,
        a: CandidatesArgs,
    ) -> Result<Value, HostError> {
        let (profile, sid) = (profile.as_str(), a.sid.as_str());
        let c = self.get(profile, sid)?;
        if c.state == State::Ended {
            return Err(bad(format!("call {sid} has ended")));
        }
        let mut queued = Vec::new();
        let mut dropped = Vec::new();
        for (i, item) in a.candidates.iter().enumerate() {
            let line = item.candidate.as_str();
            if line.trim().is_empty() {
                continue; // end-of-candidates: XEP-0176 has nothing for it
            }
            let n = item.mline_index as usize;
            let content = match item.mid.as_deref() {
                Some(mid) if c.contents.iter().any(|x| x.name == mid) => mid.to_owned(),
                _ if n < c.contents.len() => c.contents[n].name.clone(),
                mid => {
                    return Err(bad(format!(
                        "call_candidates: candidates[{i}]: no m-line {n} / mid {} in call {sid}",
                        json!(mid)
                    )));
                }
            };
            match Candidate::from_sdp(line, perch_plugin_api::ids::random_hex(5)) {
                Ok(candidate) => queued.push(Queued { content, candidate }),
                Err(e @ perch_codec::xep_0176::CandidateSkip::Malformed(..)) => {
                    return Err(bad(format!("call_candidates: candidates[{i}]: {e}")));
                }
                Err(e) => {
                    tracing::debug!(%profile, %sid, reason = %e, "local candidate not sent");
                    dropped.push(e.to_string());
                }
            }
        }
        let send_now = self
            .update(profile, sid, |c| {
                if c.signalled {
                    true
                } else {
                    c.queued.append(&mut queued);
                    false
                }
            })
            .unwrap_or(false);
        if send_now && !queued.is_empty() {
            self.send_candidates(profile, sid, queued).await?;
        }
        Ok(json!({"dropped": dropped}))
    }

    async fn call_info(self: Arc<Self>, profile: String, a: InfoArgs) -> Result<Empty, HostError> {
        let (profile, sid) = (profile.as_str(), a.sid.as_str());
        let c = self.get(profile, sid)?;
        if !matches!(c.state, State::Pending | State::Active) {
            return Err(bad(format!(
                "call {sid} is {}: no session to inform",
                c.state.as_str()
            )));
        }
        let what = a.info.as_str();
        let name = match a.media.as_deref() {
            None => None,
            Some(m) => Some(
                c.contents
                    .iter()
                    .find(|x| x.description.as_ref().is_some_and(|d| d.media == m))
                    .map(|x| x.name.clone())
                    .ok_or_else(|| bad(format!("call_info: call {sid} has no {m:?} content")))?,
            ),
        };
        let info = rtp::Info::parse(what, name).ok_or_else(|| {
            bad(format!(
                "call_info: info {what:?}: ringing, mute, unmute, active, hold or unhold"
            ))
        })?;
        let mut j = Jingle::new(Action::SessionInfo, sid);
        j.other.push(info.to_element(c.role().as_str()));
        self.send_jingle(profile, &c.peer, &j).await?;
        tracing::info!(%profile, peer = %c.peer, %sid, info = what, "call info sent");
        Ok(Empty {})
    }

    /// Stored calls and those in memory (which win: they may be newer), oldest first.
    async fn call_list(&self, profile: &str) -> Result<Vec<Value>, HostError> {
        let host = self.host();
        let id = host.profile_id(profile).await?;
        let stored = store::list(host.store(), id).await?;
        let live: Vec<Value> = self
            .lock()
            .values()
            .filter(|c| c.profile == profile)
            .map(CallState::to_json)
            .collect();
        let mut all: Vec<Value> = stored
            .into_iter()
            .filter(|s| !live.iter().any(|l| l["sid"] == s["sid"]))
            .collect();
        all.extend(live);
        all.sort_by(|a, b| a["created"].as_str().cmp(&b["created"].as_str()));
        Ok(all)
    }

    // -------------------------------------------------------------------------------
    // from the network
    // -------------------------------------------------------------------------------

    async fn on_jingle(self: Arc<Self>, req: IqRequest) -> IqAnswer {
        let profile = req.profile.clone();
        let Some(from) = req.from.clone() else {
            return Err(jingle::bad_request("a Jingle request without a sender"));
        };
        let j = match Jingle::from_element(&req.payload) {
            Ok(j) => j,
            Err(e) => {
                tracing::warn!(%profile, peer = %from, error = %e, "malformed Jingle refused");
                return Err(jingle::bad_request(&e.to_string()));
            }
        };
        let sid = j.sid.clone();
        tracing::debug!(%profile, peer = %from, %sid, action = j.action.as_str(), "Jingle received");
        let known = self.lock().get(&(profile.clone(), sid.clone())).cloned();
        let Some(c) = known else {
            if j.action == Action::SessionInitiate {
                if !j.contents.iter().any(|c| c.description.is_some()) {
                    return Err(jingle::bad_request(
                        "session-initiate without an RTP description",
                    ));
                }
                self.incoming_initiate(&profile, from, j);
                return Ok(None);
            }
            return Err(jingle::unknown_session(&sid));
        };
        if let Some(e) = Self::misfit(&profile, &from, &c, &j) {
            return Err(e);
        }
        match j.action {
            Action::SessionInitiate => {
                if !c.proceeded {
                    return Err(jingle::out_of_order(
                        "session-initiate before we accepted the proposal",
                    ));
                }
                self.update(&profile, &sid, |x| x.peer = from.clone());
                self.incoming_offer(&profile, &sid, &from, j, true);
                Ok(None)
            }
            Action::SessionAccept => {
                self.on_session_accept(&profile, &from, &j);
                Ok(None)
            }
            Action::SessionTerminate => {
                let r = j.reason.unwrap_or_else(|| Reason::new("success"));
                self.finish(&profile, &sid, &r.condition, r.text);
                Ok(None)
            }
            Action::SessionInfo => self
                .on_session_info(&profile, &from, &c, &j)
                .map_or(Ok(None), Err),
            Action::TransportInfo => self
                .on_transport_info(&profile, &from, &c, &j)
                .map_or(Ok(None), Err),
            Action::ContentRemove => {
                self.on_content_remove(&profile, &from, &j);
                Ok(None)
            }
            Action::ContentAdd => {
                self.refuse_content_add(&profile, &from, &j);
                Ok(None)
            }
            _ => {
                tracing::debug!(%profile, peer = %from, %sid, action = j.action.as_str(), "Jingle action acknowledged, nothing to do");
                Ok(None)
            }
        }
    }

    /// session-accept: the peer's answer goes to the frontend (`call_setup`) and the
    /// call is active.
    fn on_session_accept(&self, profile: &str, from: &Jid, j: &Jingle) {
        let sid = &j.sid;
        let sdp = sdp::to_sdp(&j.contents, j.group.as_ref(), Role::Responder, sid);
        self.update(profile, sid, |x| {
            for a in &j.contents {
                if let Some(o) = x.contents.iter_mut().find(|o| o.name == a.name) {
                    o.senders = a.senders;
                }
            }
        });
        tracing::info!(%profile, peer = %from, %sid, "call accepted by the peer");
        self.set_state(profile, sid, State::Active);
        let setup = Setup {
            sid: sid.to_owned(),
            role: "initiator".to_owned(),
            sdp,
        };
        self.signal(actions::SetUp, profile, setup);
    }

    /// session-info (XEP-0167 §7: ringing, mute, …) goes to the frontend
    /// (`call_info`); an info we do not understand is refused: returns the error to
    /// answer with.
    fn on_session_info(
        &self,
        profile: &str,
        from: &Jid,
        c: &CallState,
        j: &Jingle,
    ) -> Option<perch_plugin_api::parsers::stanza_error::StanzaError> {
        let sid = &j.sid;
        for p in &j.other {
            if let Some(info) = rtp::Info::from_element(p) {
                let mut data = PeerInfo {
                    sid: sid.clone(),
                    info: info.as_str().to_owned(),
                    media: None,
                };
                if let rtp::Info::Mute(Some(n)) | rtp::Info::Unmute(Some(n)) = &info
                    && let Some(m) = c
                        .contents
                        .iter()
                        .find(|x| &x.name == n)
                        .and_then(|x| x.description.as_ref())
                {
                    data.media = Some(m.media.clone());
                }
                tracing::info!(%profile, peer = %from, %sid, info = info.as_str(), "call info received");
                self.signal(actions::InfoReceived, profile, data);
            } else {
                // XEP-0166 §7.2.12: an info we do not understand.
                let mut e = jingle::out_of_order("");
                e.defined_condition = perch_plugin_api::parsers::stanza_error::DefinedCondition::FeatureNotImplemented;
                e.type_ = perch_plugin_api::parsers::stanza_error::ErrorType::Modify;
                e.texts.clear();
                e.other =
                    Some(Element::builder("unsupported-info", jingle::xml::NS_ERRORS).build());
                return Some(e);
            }
        }
        None
    }

    /// transport-info: the peer's candidates go to the frontend (`call_candidates`),
    /// with the index of their m-line; returns the error to answer with, if any.
    fn on_transport_info(
        &self,
        profile: &str,
        from: &Jid,
        c: &CallState,
        j: &Jingle,
    ) -> Option<perch_plugin_api::parsers::stanza_error::StanzaError> {
        let sid = &j.sid;
        let mut out = Vec::new();
        for content in &j.contents {
            let Some(index) = c.contents.iter().position(|x| x.name == content.name) else {
                return Some(jingle::bad_request(&format!(
                    "no content {:?} in session {sid}",
                    content.name
                )));
            };
            for cand in content.transport.iter().flat_map(|t| t.candidates.iter()) {
                out.push(CallCandidate {
                    mline_index: u32::try_from(index).unwrap_or(u32::MAX),
                    mid: Some(content.name.clone()),
                    candidate: cand.to_sdp(),
                });
            }
        }
        if !out.is_empty() {
            tracing::debug!(%profile, peer = %from, %sid, count = out.len(), "remote candidates");
            let remote = RemoteCandidates {
                sid: sid.clone(),
                candidates: out,
            };
            self.signal(actions::CandidatesReceived, profile, remote);
        }
        None
    }

    /// content-remove: the contents go; none left ends the call.
    fn on_content_remove(self: &Arc<Self>, profile: &str, from: &Jid, j: &Jingle) {
        let sid = &j.sid;
        let names: Vec<String> = j.contents.iter().map(|x| x.name.clone()).collect();
        tracing::info!(%profile, peer = %from, %sid, ?names, "the peer removed contents");
        let left = self
            .update(profile, sid, |x| {
                x.contents.retain(|o| !names.contains(&o.name));
                x.contents.len()
            })
            .unwrap_or(0);
        if left == 0 {
            // XEP-0166 §7.2.6: no content left ends the session, and the
            // receiver of the content-remove says so.
            self.finish(
                profile,
                sid,
                "success",
                Some("every content was removed".into()),
            );
            let mut end = Jingle::new(Action::SessionTerminate, sid);
            end.reason = Some(Reason::new("success"));
            let me = self.clone();
            let (p, peer) = (profile.to_owned(), from.clone());
            tokio::spawn(async move {
                if let Err(e) = me.send_jingle(&p, &peer, &end).await {
                    tracing::debug!(profile = %p, sid = %end.sid, error = %e, "session-terminate after content-remove not acked");
                }
            });
        }
    }

    /// content-add: renegotiation is not offered to frontends yet: refused politely
    /// (content-reject).
    fn refuse_content_add(self: &Arc<Self>, profile: &str, from: &Jid, j: &Jingle) {
        let sid = &j.sid;
        let me = self.clone();
        let (p, s, peer) = (profile.to_owned(), sid.clone(), from.clone());
        let mut reject = Jingle::new(Action::ContentReject, sid);
        reject.contents = j
            .contents
            .iter()
            .map(|x| Content {
                creator: x.creator.clone(),
                name: x.name.clone(),
                ..Default::default()
            })
            .collect();
        reject.reason = Some(Reason {
            condition: "failed-application".into(),
            text: Some("adding contents to a call is not supported".into()),
        });
        tokio::spawn(async move {
            if let Err(e) = me.send_jingle(&p, &peer, &reject).await {
                tracing::warn!(profile = %p, sid = %s, error = %e, "content-reject failed");
            }
        });
    }

    /// The error to answer a Jingle request for a known session with when it does not
    /// come from the session's peer, or its action does not fit the session's state.
    fn misfit(
        profile: &str,
        from: &Jid,
        c: &CallState,
        j: &Jingle,
    ) -> Option<perch_plugin_api::parsers::stanza_error::StanzaError> {
        let sid = &j.sid;
        let from_peer = if c.peer.resource().is_some() {
            *from == c.peer
        } else {
            bare(from) == bare(&c.peer)
        };
        if !from_peer {
            tracing::warn!(%profile, peer = %from, %sid, "Jingle for another peer's session refused");
            return Some(jingle::unknown_session(sid));
        }
        match check_incoming(c.state, c.role(), j.action) {
            Err(Refusal::UnknownSession) => Some(jingle::unknown_session(sid)),
            Err(Refusal::OutOfOrder) => {
                tracing::warn!(%profile, peer = %from, %sid, action = j.action.as_str(), state = c.state.as_str(), "out-of-order Jingle refused");
                Some(jingle::out_of_order(&format!(
                    "{} does not fit a {} session",
                    j.action.as_str(),
                    c.state.as_str()
                )))
            }
            Ok(()) => None,
        }
    }

    fn incoming_initiate(self: Arc<Self>, profile: &str, from: Jid, j: Jingle) {
        let state = CallState {
            profile: profile.to_owned(),
            sid: j.sid.clone(),
            peer: from.clone(),
            direction: Direction::Incoming,
            state: State::Pending,
            media: Vec::new(),
            jmi: false,
            proceeded: false,
            created: SystemTime::now(),
            connected: None,
            ended: None,
            end_reason: None,
            end_text: None,
            contents: Vec::new(),
            group: None,
            local: Vec::new(),
            offer: None,
            queued: Vec::new(),
            signalled: false,
        };
        let sid = j.sid.clone();
        self.lock().insert((profile.to_owned(), sid.clone()), state);
        self.incoming_offer(profile, &sid, &from, j, false);
    }

    /// A session-initiate we take: remember the offer, tell frontends.
    fn incoming_offer(&self, profile: &str, sid: &str, from: &Jid, j: Jingle, by_jmi: bool) {
        let media: Vec<String> = j
            .contents
            .iter()
            .filter_map(|c| c.description.as_ref().map(|d| d.media.clone()))
            .collect();
        let sdp = sdp::to_sdp(&j.contents, j.group.as_ref(), Role::Initiator, sid);
        self.update(profile, sid, |c| {
            c.contents = j.contents.clone();
            c.group = j.group.clone();
            c.media = media.clone();
            c.state = State::Pending;
        });
        tracing::info!(%profile, peer = %from, %sid, ?media, jmi = by_jmi, "incoming call");
        self.state_changed(profile, sid, State::Pending);
        let offer = Offer {
            sid: sid.to_owned(),
            peer: from.to_string(),
            media,
            sdp,
            jmi: by_jmi,
        };
        self.signal(actions::Incoming, profile, offer);
    }

    /// A JMI message: returns whether it was one (then it is not a chat message).
    fn on_jmi(self: &Arc<Self>, args: &IncomingMessage) -> bool {
        let Some(parsed) = args.message.payloads.iter().find_map(Jmi::from_element) else {
            return false;
        };
        let profile = args.profile.clone();
        let Some(from) = args.message.from.clone() else {
            return true;
        };
        let m = match parsed {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(%profile, peer = %from, error = %e, "malformed JMI message ignored");
                return true;
            }
        };
        let sid = m.id.clone();
        // A JMI message from an archive, or kept by the server while we were
        // offline, is history: ringing for it would ring for a call long gone.
        let delayed = args
            .message
            .payloads
            .iter()
            .any(|p| p.is("delay", "urn:xmpp:delay"));
        if args.source == perch_plugin_api::Source::Archive || delayed {
            tracing::info!(%profile, peer = %from, %sid, what = m.kind.name(), "old JMI message (archived or delayed) not acted on");
            return true;
        }
        // From another device of ours: a carbon of what it sent, or what it sent to
        // our own bare JID (XEP-0353's accept).
        let own = args.direction == Some(perch_plugin_api::Direction::Out)
            || args
                .message
                .to
                .as_ref()
                .is_some_and(|to| bare(to) == bare(&from));
        tracing::debug!(%profile, peer = %from, %sid, what = m.kind.name(), own, "JMI received");
        let known = self.lock().get(&(profile.clone(), sid.clone())).cloned();
        if own {
            self.on_own_jmi(&profile, &sid, known, &m.kind);
            return true;
        }
        let known = if matches!(m.kind, Kind::Propose(_)) {
            if !self.tie_break(&profile, args.message.to.as_ref(), &from, &sid) {
                return true;
            }
            // Equal ids: the tie-break may have just ended our own proposal with
            // this very id; theirs replaces it in the table.
            self.lock()
                .get(&(profile.clone(), sid.clone()))
                .filter(|c| {
                    !(c.direction == Direction::Outgoing
                        && c.end_reason.as_deref() == Some(TIE_BREAK))
                })
                .cloned()
        } else {
            known
        };
        match (m.kind.clone(), known) {
            (Kind::Propose(media), None) => self.on_jmi_propose(profile, from, sid, media),
            (Kind::Propose(_), Some(_)) => {
                tracing::warn!(%profile, peer = %from, %sid, "JMI propose for a known sid ignored");
            }
            (_, Some(c)) if bare(&c.peer) == bare(&from) => {
                self.on_call_jmi(profile, from, m, &c);
            }
            (kind, _) => {
                tracing::debug!(%profile, peer = %from, %sid, what = kind.name(), "JMI message for no call of this peer ignored");
            }
        }
        true
    }

    /// A JMI message our other device sent: it answered or declined a call that
    /// rings here too, which ends here.
    fn on_own_jmi(&self, profile: &str, sid: &str, known: Option<CallState>, kind: &Kind) {
        if let Some(c) = known
            && c.direction == Direction::Incoming
            && matches!(c.state, State::Proposed | State::Ringing)
            && !c.proceeded
            && matches!(kind, Kind::Accept | Kind::Proceed | Kind::Reject)
        {
            let reason = if *kind == Kind::Reject {
                "decline"
            } else {
                "answered-elsewhere"
            };
            self.finish(
                profile,
                sid,
                reason,
                Some("handled on another device".into()),
            );
        }
    }

    /// A call proposed to us (JMI propose): remembered, told to frontends
    /// (`call_proposed`), and the peer told it rings.
    fn on_jmi_propose(
        self: &Arc<Self>,
        profile: String,
        from: Jid,
        sid: String,
        media: Vec<String>,
    ) {
        let state = CallState {
            profile: profile.clone(),
            sid: sid.clone(),
            peer: from.clone(),
            direction: Direction::Incoming,
            state: State::Proposed,
            media: media.clone(),
            jmi: true,
            proceeded: false,
            created: SystemTime::now(),
            connected: None,
            ended: None,
            end_reason: None,
            end_text: None,
            contents: Vec::new(),
            group: None,
            local: Vec::new(),
            offer: None,
            queued: Vec::new(),
            signalled: false,
        };
        self.lock().insert((profile.clone(), sid.clone()), state);
        tracing::info!(%profile, peer = %from, %sid, ?media, "call proposed to us (JMI)");
        let proposal = Proposal {
            sid: sid.clone(),
            peer: from.to_string(),
            media,
        };
        self.signal(actions::Proposed, &profile, proposal);
        let me = self.clone();
        tokio::spawn(async move {
            match me
                .send_jmi(&profile, &from, &Jmi::new(Kind::Ringing, &sid), false)
                .await
            {
                Ok(()) => me.set_state(&profile, &sid, State::Ringing),
                Err(e) => {
                    tracing::warn!(%profile, %sid, error = %e, "sending JMI ringing failed")
                }
            }
        });
    }

    /// A JMI message from the peer of call `c`, other than a propose: what it does
    /// depends on the call's direction and state.
    fn on_call_jmi(self: &Arc<Self>, profile: String, from: Jid, m: Jmi, c: &CallState) {
        let sid = m.id;
        match (m.kind, c.direction, c.state) {
            (Kind::Ringing, Direction::Outgoing, State::Proposed) => {
                self.set_state(&profile, &sid, State::Ringing);
                let ringing = PeerInfo {
                    sid,
                    info: "ringing".to_owned(),
                    media: None,
                };
                self.signal(actions::InfoReceived, &profile, ringing);
            }
            (Kind::Proceed, Direction::Outgoing, State::Proposed | State::Ringing) => {
                let offer = self.update(&profile, &sid, |x| {
                    x.peer = from.clone();
                    x.state = State::Pending;
                    x.offer.take()
                });
                let Some(Some(offer)) = offer else {
                    return;
                };
                tracing::info!(%profile, peer = %from, %sid, "JMI proceed: sending session-initiate");
                let me = self.clone();
                tokio::spawn(async move {
                    let _ = me.initiate(&profile, &sid, &from, offer).await;
                });
            }
            (Kind::Reject, Direction::Outgoing, State::Proposed | State::Ringing)
            | (Kind::Retract, Direction::Incoming, State::Proposed | State::Ringing)
                if m.tie_break =>
            {
                // Two proposals crossed and this one lost: no refusal, no busy.
                let text = m.reason.and_then(|r| r.text);
                tracing::info!(%profile, peer = %from, %sid, "JMI tie-break lost by this call");
                self.finish(&profile, &sid, TIE_BREAK, text);
            }
            (Kind::Reject, Direction::Outgoing, State::Proposed | State::Ringing) => {
                let r = m.reason.unwrap_or_else(|| Reason::new("decline"));
                self.finish(&profile, &sid, &r.condition, r.text);
            }
            (Kind::Retract, Direction::Incoming, State::Proposed | State::Ringing) => {
                let r = m.reason.unwrap_or_else(|| Reason::new("cancel"));
                self.finish(&profile, &sid, &r.condition, r.text);
            }
            (Kind::Finish, _, s) if s != State::Ended => {
                let r = m.reason.unwrap_or_else(|| Reason::new("success"));
                self.finish(&profile, &sid, &r.condition, r.text);
            }
            (kind, _, s) => {
                tracing::debug!(%profile, peer = %from, %sid, what = kind.name(), state = s.as_str(), "JMI message ignored");
            }
        }
    }

    /// XEP-0353 0.8 "Tie Breaking", no existing session: a propose `sid` from
    /// `from` while our own proposal to the same contact is still unanswered.
    /// The lower id wins ([`jmi::ours_wins`]); the loser's proposal is withdrawn
    /// with `<tie-break/>` (we retract ours, or reject theirs). Returns whether
    /// their propose is to be handled (rung) as usual.
    fn tie_break(self: &Arc<Self>, profile: &str, to: Option<&Jid>, from: &Jid, sid: &str) -> bool {
        let ours: Vec<CallState> = self
            .lock()
            .values()
            .filter(|c| {
                c.profile == profile
                    && c.direction == Direction::Outgoing
                    && c.jmi
                    && matches!(c.state, State::Proposed | State::Ringing)
                    && bare(&c.peer) == bare(from)
            })
            .cloned()
            .collect();
        if ours.is_empty() {
            return true;
        }
        let Some(me) = to.map(bare) else {
            tracing::warn!(%profile, peer = %from, %sid, "JMI propose without a to: no tie-break");
            return true;
        };
        let them = bare(from);
        let (won, lost): (Vec<_>, Vec<_>) = ours
            .into_iter()
            .partition(|c| jmi::ours_wins(&c.sid, &me, sid, &them));
        for c in &lost {
            tracing::info!(%profile, peer = %from, sid = %c.sid, theirs = %sid, "JMI tie-break: retracting our proposal");
            self.finish(profile, &c.sid, TIE_BREAK, Some("Tie-Break".into()));
            let mut m = Jmi::new(Kind::Retract, &c.sid);
            m.reason = Some(jmi::tie_break_reason());
            m.tie_break = true;
            self.spawn_send_jmi(profile, c.peer.to_bare().into(), m, true);
        }
        if won.is_empty() {
            return true;
        }
        tracing::info!(%profile, peer = %from, sid = %won[0].sid, theirs = %sid, "JMI tie-break: rejecting their proposal");
        let mut m = Jmi::new(Kind::Reject, sid);
        m.reason = Some(jmi::tie_break_reason());
        m.tie_break = true;
        self.spawn_send_jmi(profile, from.clone(), m, false);
        false
    }

    /// Sends a JMI message off the caller's path (message handlers are sync).
    fn spawn_send_jmi(self: &Arc<Self>, profile: &str, to: Jid, m: Jmi, store: bool) {
        let me = self.clone();
        let profile = profile.to_owned();
        tokio::spawn(async move {
            if let Err(e) = me.send_jmi(&profile, &to, &m, store).await {
                tracing::warn!(%profile, peer = %to, sid = %m.id, what = m.kind.name(), error = %e, "sending JMI failed");
            }
        });
    }

    fn on_presence(&self, args: &IncomingPresence) {
        let Some(from) = args.presence.from.clone() else {
            return;
        };
        if from.resource().is_none() {
            return;
        }
        let mut p = self.presences.lock().unwrap_or_else(|e| e.into_inner());
        let entry = p
            .entry(args.profile.clone())
            .or_default()
            .entry(bare(&from))
            .or_default();
        match args.presence.type_ {
            PresenceType::None => {
                entry.insert(from.to_string());
            }
            PresenceType::Unavailable | PresenceType::Error => {
                entry.remove(&from.to_string());
                drop(p);
                // The device a call runs with went away: the call is over.
                let gone: Vec<String> = self
                    .lock()
                    .values()
                    .filter(|c| {
                        c.profile == args.profile && c.peer == from && c.state != State::Ended
                    })
                    .map(|c| c.sid.clone())
                    .collect();
                for sid in gone {
                    self.finish(
                        &args.profile,
                        &sid,
                        "gone",
                        Some(format!("{from} went offline")),
                    );
                }
            }
            _ => {}
        }
    }
}

/// What the daemon knows of it before building it.
pub const INFO: PluginInfo = PluginInfo {
    import_name: IMPORT_NAME,
    name: "Jingle RTP calls",
    description: "Audio and video calls: Jingle signalling (XEP-0166/0167/0176/0320/0353) converted to and from the frontend's SDP",
    dependencies: &[],
    recommendations: &["XEP-0030", "XEP-0280"],
    tables: &["call"],
    signals_as: Some(SIGNAL_PLUGIN),
};

/// The plugin, built by the daemon with its host.
pub fn factory() -> PluginFactory {
    PluginFactory::new(INFO, build)
}

/// `ring_timeout_s` from the plugin's options.
fn ring_timeout(options: &Value) -> Result<Duration, PluginError> {
    match options.get("ring_timeout_s") {
        None => Ok(RING_TIMEOUT),
        Some(v) => match v.as_f64() {
            Some(secs) if secs > 0.0 && secs <= 3600.0 => Ok(Duration::from_secs_f64(secs)),
            _ => Err(PluginError(format!(
                "plugins.options.\"{IMPORT_NAME}\".ring_timeout_s must be a number of seconds in (0, 3600], got {v}"
            ))),
        },
    }
}

async fn build(host: Arc<dyn Host>) -> BuildResult {
    let me = Arc::new(Calls {
        ring_timeout: ring_timeout(&host.options())?,
        host: host.clone(),
        calls: Mutex::default(),
        presences: Mutex::default(),
    });
    for f in FEATURES {
        host.add_feature(f);
    }
    declare_signals(&*host);
    let m = me.clone();
    host.add_iq_handler(
        true,
        "jingle",
        jingle::xml::NS,
        Arc::new(move |req| m.clone().on_jingle(req).boxed()),
    );
    let t = host.triggers();
    t.add_with::<MessageReceived, _>(0, me.clone(), |me, args| {
        let flow = if me.on_jmi(args) {
            Flow::Stop
        } else {
            Flow::Continue
        };
        async move { flow }.boxed()
    })?;
    t.add_with::<PresenceReceived, _>(0, me.clone(), |me, args| {
        me.on_presence(args);
        async { Flow::Continue }.boxed()
    })?;
    register_actions(&me, &host);
    Ok(me)
}

/// The signals perchd emits about calls (declared in `perch_actions::calls`).
fn declare_signals(host: &dyn Host) {
    host.declare(actions::Proposed);
    host.declare(actions::Incoming);
    host.declare(actions::SetUp);
    host.declare(actions::CandidatesReceived);
    host.declare(actions::InfoReceived);
    host.declare(actions::StateChanged);
    host.declare(actions::Ended);
}

fn register_actions(me: &Arc<Calls>, host: &Arc<dyn Host>) {
    host.serve(actions::Start, me.clone(), Calls::call_start);
    host.serve(actions::Answer, me.clone(), Calls::call_answer);
    host.serve(actions::Decline, me.clone(), Calls::call_decline);
    host.serve(actions::Candidates, me.clone(), Calls::call_candidates);
    host.serve(actions::Info, me.clone(), Calls::call_info);
    host.serve(actions::End, me.clone(), Calls::call_end);
    host.serve(
        actions::List,
        me.clone(),
        |m, profile, _: NoArgs| async move { m.call_list(&profile).await },
    );
}

impl Plugin for Calls {
    fn session_ended(self: Arc<Self>, profile: String) -> BoxFuture<'static, ()> {
        async move {
            self.presences
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&profile);
            let open: Vec<String> = self
                .lock()
                .values()
                .filter(|c| c.profile == profile && c.state != State::Ended)
                .map(|c| c.sid.clone())
                .collect();
            for sid in open {
                self.finish(
                    &profile,
                    &sid,
                    "connectivity-error",
                    Some("our session ended".into()),
                );
            }
        }
        .boxed()
    }
}
