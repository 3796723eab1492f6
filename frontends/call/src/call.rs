//! One call's signalling with perchd, and its facts at hang-up.
//!
//! Why it looks like this: perchd owns the Jingle session (its sid and state machine)
//! and speaks SDP to frontends through plugin `xep_0167`'s actions (`call_start`,
//! `call_answer`, `call_candidates`, `call_end`, …) and signals (`call_incoming`,
//! `call_setup`, `call_candidates`, `call_ended`, …), doc/calls.rst. This module
//! drives one call from either side:
//!
//! - the caller makes the offer, starts the call, applies the answer from `call_setup`;
//! - the listener waits for `call_incoming`, answers (or declines a peer it does not
//!   accept);
//! - both trickle: local candidates go out with `call_candidates` once the sid exists
//!   (and, for the listener, once the answer is sent), remote ones go to the pipeline,
//!   which queues them until the remote description is set.
//!
//! Signals are subscribed to before the first action, so none is lost in between;
//! signals for other profiles or other sids are ignored.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures::StreamExt;
use perch_client::actions::{NoArgs, calls, disco};
use perch_client::{Action, Client, Signal, SignalStream};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::error::{CallError, Result};
use crate::media::{Kind, Media, MediaConfig, MediaEvent, Sink, Source, StreamReport, sdp_kinds};

/// The plugin whose actions and signals carry calls.
pub const PLUGIN: &str = "xep_0167";

/// What both `start` and `listen` take.
#[derive(Debug, Clone)]
pub struct CallOptions {
    pub profile: String,
    pub source: Source,
    pub sink: Sink,
    /// Hang up this long after the media connected.
    pub duration: Option<Duration>,
    /// Give up when ICE and DTLS have not connected this long after the answer.
    pub connect_timeout: Duration,
    pub local_address: Option<String>,
}

/// The facts of a call, printed at hang-up.
#[derive(Debug, Clone, Serialize)]
pub struct CallReport {
    pub sid: String,
    pub peer: String,
    /// `initiator` or `responder`.
    pub role: &'static str,
    /// The best ICE connection state reached (`connected`, `completed`, or where it stopped).
    pub ice_state: String,
    /// The DTLS transports' state when the peer connection connected (`connected` when
    /// all were, else each one's).
    pub dtls_state: String,
    /// The best peer connection (ICE plus DTLS) state reached.
    pub peer_state: String,
    /// From the answer (sent or received) to ICE and DTLS connected, in ms.
    pub setup_ms: Option<f64>,
    pub streams: Vec<StreamReport>,
    pub rtt_ms: Option<f64>,
    pub end_reason: String,
    /// `local` when this side hung up, `remote` when the peer (or perchd) did.
    pub ended_by: &'static str,
    /// How long the media was connected, in seconds.
    pub connected_s: Option<f64>,
}

impl CallReport {
    /// The text printed without `--json`.
    pub fn text(&self) -> String {
        let mut out = format!(
            "call {} with {} ended ({} hung up): {}\n",
            self.sid, self.peer, self.ended_by, self.end_reason
        );
        out += &format!("ICE: {}  DTLS: {}", self.ice_state, self.dtls_state);
        if let Some(ms) = self.setup_ms {
            out += &format!("  set-up: {ms:.0} ms");
        }
        match self.rtt_ms {
            Some(rtt) => out += &format!("  RTT: {rtt:.1} ms\n"),
            None => out += "  RTT: unknown\n",
        }
        for s in &self.streams {
            out += &format!(
                "{}: sent {} packets ({} bytes), received {} packets ({} bytes), \
                 {} buffers decoded\n",
                s.kind.as_str(),
                s.packets_sent,
                s.bytes_sent,
                s.packets_received,
                s.bytes_received,
                s.decoded_buffers
            );
        }
        out
    }
}

/// A call signal from perchd, decoded.
#[derive(Debug, Clone, PartialEq)]
pub enum CallSignal {
    Proposed {
        sid: String,
        peer: String,
    },
    Incoming {
        sid: String,
        peer: String,
        media: Vec<String>,
        sdp: String,
    },
    Setup {
        sid: String,
        role: String,
        sdp: String,
    },
    Candidates {
        sid: String,
        candidates: Vec<(u32, String)>,
    },
    Info {
        sid: String,
        info: String,
    },
    State {
        sid: String,
        state: String,
    },
    Ended {
        sid: String,
        reason: String,
        text: Option<String>,
    },
}

impl CallSignal {
    pub fn sid(&self) -> &str {
        match self {
            CallSignal::Proposed { sid, .. }
            | CallSignal::Incoming { sid, .. }
            | CallSignal::Setup { sid, .. }
            | CallSignal::Candidates { sid, .. }
            | CallSignal::Info { sid, .. }
            | CallSignal::State { sid, .. }
            | CallSignal::Ended { sid, .. } => sid,
        }
    }

    /// Decodes a `PluginSignal` of [`PLUGIN`] for `profile`; `None` for anything else
    /// (other plugins, other profiles, names this frontend does not use, bad JSON).
    pub fn decode(signal: &Signal, profile: &str) -> Option<CallSignal> {
        let Signal::PluginSignal {
            plugin,
            name,
            profile: p,
            data,
        } = signal
        else {
            return None;
        };
        if plugin != PLUGIN || p != profile {
            return None;
        }
        let v: Value = serde_json::from_str(data).ok()?;
        let s = |k: &str| v[k].as_str().map(str::to_owned);
        let sid = s("sid")?;
        Some(match name.as_str() {
            "call_proposed" => CallSignal::Proposed {
                sid,
                peer: s("peer").unwrap_or_default(),
            },
            "call_incoming" => CallSignal::Incoming {
                sid,
                peer: s("peer").unwrap_or_default(),
                media: v["media"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|m| m.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default(),
                sdp: s("sdp")?,
            },
            "call_setup" => CallSignal::Setup {
                sid,
                role: s("role").unwrap_or_default(),
                sdp: s("sdp")?,
            },
            "call_candidates" => CallSignal::Candidates {
                sid,
                candidates: v["candidates"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|c| {
                                let line = c["candidate"].as_str()?;
                                let mline = c["mline_index"].as_u64().unwrap_or(0);
                                Some((u32::try_from(mline).ok()?, line.to_owned()))
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
            },
            "call_info" => CallSignal::Info {
                sid,
                info: s("info").unwrap_or_default(),
            },
            "call_state" => CallSignal::State {
                sid,
                state: s("state").unwrap_or_default(),
            },
            "call_ended" => CallSignal::Ended {
                sid,
                reason: s("reason").unwrap_or_else(|| "unknown".into()),
                text: s("text").filter(|t| !t.is_empty()),
            },
            _ => return None,
        })
    }
}

/// The `a=mid` of each m-line of an SDP, in order (empty when an m-line has none).
pub fn sdp_mids(sdp: &str) -> Vec<String> {
    let mut mids = Vec::new();
    for line in sdp.lines() {
        if line.starts_with("m=") {
            mids.push(String::new());
        } else if let Some(mid) = line.strip_prefix("a=mid:")
            && let Some(last) = mids.last_mut()
        {
            *last = mid.trim().to_owned();
        }
    }
    mids
}

/// The bare JID of `jid` (what `--accept-from` compares).
pub fn bare(jid: &str) -> &str {
    jid.split('/').next().unwrap_or(jid)
}

/// perchd for one profile.
struct Daemon {
    client: Client,
    profile: String,
}

impl Daemon {
    /// Runs typed action `A`; a result that does not fit its type is `BadReply`.
    async fn action<A: Action>(&self, args: A::Args) -> Result<A::Output> {
        let bad = |e: serde_json::Error| CallError::BadReply {
            action: A::NAME,
            why: e.to_string(),
        };
        let text = serde_json::to_string(&args).map_err(bad)?;
        let reply = self
            .client
            .action_run(&self.profile, A::NAME, &text)
            .await?;
        serde_json::from_str(&reply).map_err(bad)
    }

    /// `call_decline` with reason `decline`, logged when it fails.
    async fn decline(&self, sid: &str) {
        let args = calls::DeclineArgs {
            sid: sid.to_owned(),
            reason: Some("decline".into()),
        };
        if let Err(e) = self.action::<calls::Decline>(args).await {
            tracing::warn!(%sid, error = %e, "call_decline failed");
        }
    }

    /// STUN and TURN servers from XEP-0215 (`external_services`), as webrtcbin URIs.
    /// A daemon that cannot say leaves the call without them (host candidates only).
    async fn ice_servers(&self) -> (Option<String>, Vec<String>) {
        let list = match self.action::<disco::ExternalServices>(NoArgs {}).await {
            Ok(list) => list,
            Err(e) => {
                tracing::warn!(profile = %self.profile, error = %e, "no STUN/TURN servers");
                return (None, Vec::new());
            }
        };
        let (stun, turn) = ice_servers(&list);
        // TURN URIs carry credentials: only their number is logged.
        tracing::info!(profile = %self.profile, stun = stun.as_deref().unwrap_or("none"), turn = turn.len(), "ICE servers from external_services");
        (stun, turn)
    }
}

/// Percent-encodes what cannot stand in a URI's user-info.
fn userinfo(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out += &format!("%{b:02X}");
        }
    }
    out
}

/// webrtcbin's `stun-server` and `turn-server` URIs from an `external_services` list.
pub fn ice_servers(list: &[Value]) -> (Option<String>, Vec<String>) {
    let mut stun = None;
    let mut turn = Vec::new();
    for s in list {
        let (Some(ty), Some(host)) = (s["type"].as_str(), s["host"].as_str()) else {
            continue;
        };
        let port = s["port"].as_u64().unwrap_or(3478);
        let host = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]")
        } else {
            host.to_owned()
        };
        match ty {
            "stun" if stun.is_none() => stun = Some(format!("stun://{host}:{port}")),
            "turn" | "turns" => {
                let user = userinfo(s["username"].as_str().unwrap_or(""));
                let pass = userinfo(s["password"].as_str().unwrap_or(""));
                let transport = match s["transport"].as_str() {
                    Some("tcp") => "?transport=tcp",
                    _ => "",
                };
                turn.push(format!("{ty}://{user}:{pass}@{host}:{port}{transport}"));
            }
            _ => {}
        }
    }
    (stun, turn)
}

fn media_config(
    opts: &CallOptions,
    kinds: Vec<Kind>,
    ice: (Option<String>, Vec<String>),
) -> MediaConfig {
    MediaConfig {
        kinds,
        source: opts.source,
        sink: opts.sink,
        local_address: opts.local_address.clone(),
        stun_server: ice.0,
        turn_servers: ice.1,
    }
}

fn ice_rank(state: &str) -> u8 {
    match state {
        "new" => 0,
        "checking" => 1,
        "connected" => 3,
        "completed" => 4,
        _ => 2,
    }
}

fn peer_rank(state: &str) -> u8 {
    match state {
        "new" => 0,
        "connecting" => 1,
        "connected" => 3,
        _ => 2,
    }
}

/// The running call: everything the loop needs.
struct Running {
    daemon: Daemon,
    signals: SignalStream,
    media: Media,
    events: mpsc::UnboundedReceiver<MediaEvent>,
    sid: String,
    peer: String,
    role: &'static str,
    /// The local SDP's mids, to name the m-line of each local candidate.
    mids: Vec<String>,
    /// When the answer was sent or applied (`None` for a caller still waiting).
    answered_at: Option<Instant>,
}

/// Places a call to `peer` and runs it until either side hangs up.
pub async fn start(
    client: Client,
    opts: &CallOptions,
    peer: &str,
    kinds: Vec<Kind>,
    jmi: bool,
) -> Result<CallReport> {
    let daemon = Daemon {
        client,
        profile: opts.profile.clone(),
    };
    let signals = daemon.client.signals().await?;
    let ice = daemon.ice_servers().await;
    let (tx, mut events) = mpsc::unbounded_channel();
    let media = Media::new(&media_config(opts, kinds.clone(), ice), tx)?;
    media.play()?;
    // webrtcbin says when its transceivers are ready for an offer.
    let waited = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match events.recv().await {
                Some(MediaEvent::NegotiationNeeded) => return Ok(()),
                Some(MediaEvent::Error(e)) => return Err(CallError::Pipeline(e)),
                Some(_) => {}
                None => return Err(CallError::Pipeline("the pipeline stopped".into())),
            }
        }
    })
    .await;
    match waited {
        Ok(r) => r?,
        Err(_) => {
            return Err(CallError::Pipeline(
                "webrtcbin never asked for negotiation".into(),
            ));
        }
    }
    let offer = media.create_offer().await?;
    let media_names: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
    let args = calls::StartArgs {
        peer: peer.to_owned(),
        sdp: offer.clone(),
        media: media_names.iter().map(|m| (*m).to_owned()).collect(),
        jmi,
    };
    // perchd names the resource it chose (the bare JID while a JMI proposal is open).
    let calls::Started { sid, peer } = daemon.action::<calls::Start>(args).await?;
    tracing::info!(profile = %opts.profile, %peer, %sid, "call placed");
    Running {
        daemon,
        signals,
        media,
        events,
        sid,
        peer,
        role: "initiator",
        mids: sdp_mids(&offer),
        answered_at: None,
    }
    .run(opts)
    .await
}

/// Waits for an incoming call (from an accepted peer when `accept_from` is not empty),
/// answers it and runs it until either side hangs up. `ready` is called once perchd's
/// signals are subscribed to (from then on no incoming call can be missed).
pub async fn listen(
    client: Client,
    opts: &CallOptions,
    accept_from: &[String],
    wait: Option<Duration>,
    ready: impl FnOnce(),
) -> Result<CallReport> {
    let daemon = Daemon {
        client,
        profile: opts.profile.clone(),
    };
    let mut signals = daemon.client.signals().await?;
    ready();
    // Candidates may come before the call is taken: keep them per sid.
    let mut early: HashMap<String, Vec<(u32, String)>> = HashMap::new();
    let (sid, peer, media_names, offer) =
        wait_for_offer(&daemon, &mut signals, opts, accept_from, wait, &mut early).await?;
    tracing::info!(profile = %opts.profile, %peer, %sid, "answering");
    let mut kinds = sdp_kinds(&offer);
    if kinds.is_empty() {
        kinds = media_names.iter().filter_map(|m| Kind::parse(m)).collect();
    }
    kinds.dedup();
    let ice = daemon.ice_servers().await;
    let (tx, events) = mpsc::unbounded_channel();
    let answered = async {
        let mut media = Media::new(&media_config(opts, kinds, ice), tx)?;
        media.play()?;
        for (mline, c) in early.remove(&sid).unwrap_or_default() {
            media.add_remote_candidate(mline, &c);
        }
        let answer = media.answer_offer(&offer).await?;
        Ok::<_, CallError>((media, answer))
    }
    .await;
    let (media, answer) = match answered {
        Ok(done) => done,
        Err(e) => {
            let args = calls::EndArgs {
                sid: sid.clone(),
                reason: Some("failed-application".into()),
                text: None,
            };
            let _ = daemon.action::<calls::End>(args).await;
            return Err(e);
        }
    };
    let args = calls::AnswerArgs {
        sid: sid.clone(),
        sdp: Some(answer.clone()),
    };
    daemon.action::<calls::Answer>(args).await?;
    Running {
        daemon,
        signals,
        media,
        events,
        sid,
        peer,
        role: "responder",
        mids: sdp_mids(&answer),
        answered_at: Some(Instant::now()),
    }
    .run(opts)
    .await
}

/// Waits for a call from an accepted peer, answering proposals (XEP-0353) and
/// declining calls from others on the way: returns its sid, peer, media and SDP
/// offer. Candidates that come first are kept in `early`, per sid.
async fn wait_for_offer(
    daemon: &Daemon,
    signals: &mut SignalStream,
    opts: &CallOptions,
    accept_from: &[String],
    wait: Option<Duration>,
    early: &mut HashMap<String, Vec<(u32, String)>>,
) -> Result<(String, String, Vec<String>, String)> {
    let deadline = wait.map(|w| tokio::time::Instant::now() + w);
    let accepts =
        |peer: &str| accept_from.is_empty() || accept_from.iter().any(|a| bare(a) == bare(peer));
    loop {
        let next = async {
            match deadline {
                Some(d) => tokio::time::timeout_at(d, signals.next()).await.ok(),
                None => Some(signals.next().await),
            }
        };
        let signal = match next.await {
            None => return Err(CallError::NoIncomingCall(wait.unwrap_or_default())),
            Some(None) => return Err(CallError::DaemonGone),
            Some(Some(Err(e))) => {
                tracing::warn!(error = %e, "undecodable signal");
                continue;
            }
            Some(Some(Ok(s))) => s,
        };
        match CallSignal::decode(&signal, &opts.profile) {
            Some(CallSignal::Candidates { sid, candidates }) => {
                early.entry(sid).or_default().extend(candidates);
            }
            Some(CallSignal::Proposed { sid, peer }) => {
                // XEP-0353: a call rung before the session exists. Accepting it (proceed)
                // brings the offer as `call_incoming`; refusing it rejects the proposal.
                if accepts(&peer) {
                    tracing::info!(profile = %opts.profile, %peer, %sid, "accepting a proposed call");
                    let args = calls::AnswerArgs {
                        sid: sid.clone(),
                        sdp: None,
                    };
                    if let Err(e) = daemon.action::<calls::Answer>(args).await {
                        tracing::warn!(%sid, error = %e, "call_answer failed");
                    }
                } else {
                    tracing::info!(profile = %opts.profile, %peer, %sid, "rejecting a proposed call from a peer not accepted");
                    daemon.decline(&sid).await;
                }
            }
            Some(CallSignal::Incoming {
                sid,
                peer,
                media,
                sdp,
            }) => {
                if accepts(&peer) {
                    return Ok((sid, peer, media, sdp));
                }
                tracing::info!(profile = %opts.profile, %peer, %sid, "declining a call from a peer not accepted");
                daemon.decline(&sid).await;
            }
            _ => {}
        }
    }
}

enum End {
    Local(String),
    Remote(String, Option<String>),
}

impl Running {
    async fn end(&self, reason: &str) {
        let args = calls::EndArgs {
            sid: self.sid.clone(),
            reason: Some(reason.to_owned()),
            text: None,
        };
        if let Err(e) = self.daemon.action::<calls::End>(args).await {
            tracing::warn!(sid = %self.sid, error = %e, "call_end failed");
        }
    }

    async fn send_candidate(&self, mline_index: u32, candidate: String) {
        let mid = self
            .mids
            .get(mline_index as usize)
            .cloned()
            .unwrap_or_else(|| mline_index.to_string());
        let args = calls::CandidatesArgs {
            sid: self.sid.clone(),
            candidates: vec![calls::Candidate {
                mline_index,
                mid: Some(mid),
                candidate,
            }],
        };
        if let Err(e) = self.daemon.action::<calls::Candidates>(args).await {
            tracing::warn!(sid = %self.sid, error = %e, "call_candidates failed");
        }
    }

    async fn run(mut self, opts: &CallOptions) -> Result<CallReport> {
        let mut p = Progress::default();
        let started = Instant::now();
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(|e| CallError::Pipeline(format!("cannot watch SIGTERM: {e}")))?;
        let end = loop {
            let connect_deadline = tokio::time::Instant::from_std(
                self.answered_at.unwrap_or(started) + opts.connect_timeout,
            );
            let hangup_at = match (p.connected_at, opts.duration) {
                (Some(at), Some(d)) => Some(tokio::time::Instant::from_std(at + d)),
                _ => None,
            };
            tokio::select! {
                signal = self.signals.next() => {
                    let signal = match signal {
                        None => break End::Remote("daemon-gone".into(), None),
                        Some(Err(e)) => {
                            tracing::warn!(error = %e, "undecodable signal");
                            continue;
                        }
                        Some(Ok(s)) => s,
                    };
                    if let Some(end) = self.on_signal(&signal, opts, &mut p).await {
                        break end;
                    }
                }
                event = self.events.recv() => {
                    if let Some(end) = self.on_media_event(event, &mut p).await {
                        break end;
                    }
                }
                _ = tokio::time::sleep_until(connect_deadline), if p.connected_at.is_none() => {
                    p.failure = Some(CallError::NotConnected(format!(
                        "ICE {}, peer connection {} after {:?}", p.ice_state, p.peer_state, opts.connect_timeout
                    )));
                    self.end("connectivity-error").await;
                    break End::Local("connectivity-error".into());
                }
                _ = async { tokio::time::sleep_until(hangup_at.expect("guarded")).await }, if hangup_at.is_some() => {
                    self.end("success").await;
                    break End::Local("success".into());
                }
                _ = tokio::signal::ctrl_c() => {
                    let reason = if p.connected_at.is_some() { "success" } else { "cancel" };
                    self.end(reason).await;
                    break End::Local(reason.into());
                }
                _ = term.recv() => {
                    let reason = if p.connected_at.is_some() { "success" } else { "cancel" };
                    self.end(reason).await;
                    break End::Local(reason.into());
                }
            }
        };
        self.report(end, p).await
    }

    /// A signal of perchd: for this call, the answer (`call_setup`, for the caller),
    /// the peer's candidates, its end. Returns how the call ended, if it did.
    async fn on_signal(
        &mut self,
        signal: &Signal,
        opts: &CallOptions,
        p: &mut Progress,
    ) -> Option<End> {
        let call = CallSignal::decode(signal, &opts.profile)?;
        if call.sid() != self.sid {
            return None;
        }
        match call {
            CallSignal::Setup { sdp, role, .. } => {
                if self.role == "initiator" && self.answered_at.is_none() {
                    tracing::info!(sid = %self.sid, %role, "answer received");
                    if let Err(e) = self.media.apply_answer(&sdp).await {
                        self.end("failed-application").await;
                        p.failure = Some(e);
                        return Some(End::Local("failed-application".into()));
                    }
                    self.answered_at = Some(Instant::now());
                }
            }
            CallSignal::Candidates { candidates, .. } => {
                for (mline, c) in candidates {
                    self.media.add_remote_candidate(mline, &c);
                }
            }
            CallSignal::Ended { reason, text, .. } => return Some(End::Remote(reason, text)),
            CallSignal::Info { info, .. } => tracing::info!(sid = %self.sid, %info, "call info"),
            CallSignal::State { state, .. } => {
                tracing::info!(sid = %self.sid, %state, "call state")
            }
            CallSignal::Proposed { .. } | CallSignal::Incoming { .. } => {}
        }
        None
    }

    /// An event of the media pipeline (`None`: it stopped): local candidates go out,
    /// ICE and peer connection states are followed. Returns how the call ended, if
    /// it did.
    async fn on_media_event(&mut self, event: Option<MediaEvent>, p: &mut Progress) -> Option<End> {
        match event {
            None => {
                p.failure = Some(CallError::Pipeline("the pipeline stopped".into()));
                self.end("failed-application").await;
                return Some(End::Local("failed-application".into()));
            }
            Some(MediaEvent::NegotiationNeeded) => {}
            Some(MediaEvent::LocalCandidate {
                mline_index,
                candidate,
            }) => {
                // XEP-0176 carries UDP only.
                if candidate.contains(" TCP ") || candidate.contains(" tcp ") {
                    return None;
                }
                self.send_candidate(mline_index, candidate).await;
            }
            Some(MediaEvent::IceState(s)) => {
                if let Some(reason) = self.on_ice_state(s, p) {
                    self.end(reason).await;
                    return Some(End::Local(reason.into()));
                }
            }
            Some(MediaEvent::PeerState(s)) => {
                if let Some(reason) = self.on_peer_state(s, p) {
                    self.end(reason).await;
                    return Some(End::Local(reason.into()));
                }
            }
            Some(MediaEvent::Error(e)) => {
                p.failure = Some(CallError::Pipeline(e));
                self.end("failed-application").await;
                return Some(End::Local("failed-application".into()));
            }
        }
        if p.ice_up && p.peer_up && p.connected_at.is_none() {
            let now = Instant::now();
            p.connected_at = Some(now);
            p.setup_ms = self
                .answered_at
                .map(|a| now.duration_since(a).as_secs_f64() * 1000.0);
            tracing::info!(sid = %self.sid, setup_ms = ?p.setup_ms, "media connected");
        }
        None
    }

    /// A new ICE state: returns the reason to end the call with if ICE failed
    /// before it ever connected.
    fn on_ice_state(&self, s: String, p: &mut Progress) -> Option<&'static str> {
        tracing::info!(sid = %self.sid, state = %s, "ICE");
        if ice_rank(&s) > ice_rank(&p.ice_state) || !p.ice_up {
            p.ice_state = s.clone();
        }
        p.ice_up |= matches!(s.as_str(), "connected" | "completed");
        if s == "failed" && !p.ice_up {
            p.failure = Some(CallError::NotConnected("ICE failed".into()));
            return Some("connectivity-error");
        }
        None
    }

    /// A new peer connection state (once connected, the DTLS transports' states are
    /// read): returns the reason to end the call with if it failed before it ever
    /// connected.
    fn on_peer_state(&self, s: String, p: &mut Progress) -> Option<&'static str> {
        tracing::info!(sid = %self.sid, state = %s, "peer connection");
        if peer_rank(&s) > peer_rank(&p.peer_state) || !p.peer_up {
            p.peer_state = s.clone();
        }
        if s == "connected" && !p.peer_up {
            // The DTLS transports themselves, when ICE and DTLS are up.
            let dtls = self.media.dtls_states();
            tracing::info!(sid = %self.sid, ?dtls, "DTLS transports");
            p.dtls_state = if !dtls.is_empty() && dtls.iter().all(|d| d == "connected") {
                "connected".to_owned()
            } else {
                dtls.join(",")
            };
        }
        p.peer_up |= s == "connected";
        if s == "failed" && !p.peer_up {
            p.failure = Some(CallError::NotConnected("DTLS failed".into()));
            return Some("security-error");
        }
        None
    }

    /// Stops the media and gives the call's facts, or why it failed.
    async fn report(self, end: End, p: Progress) -> Result<CallReport> {
        let (streams, rtt_ms) = self.media.report().await;
        self.media.stop();
        if let Some(e) = p.failure {
            return Err(e);
        }
        let (end_reason, ended_by, text) = match end {
            End::Local(r) => (r, "local", None),
            End::Remote(r, t) => (r, "remote", t),
        };
        if p.connected_at.is_none() {
            return Err(CallError::Ended {
                reason: end_reason,
                text,
            });
        }
        Ok(CallReport {
            sid: self.sid,
            peer: self.peer,
            role: self.role,
            ice_state: p.ice_state,
            dtls_state: p.dtls_state,
            peer_state: p.peer_state,
            setup_ms: p.setup_ms,
            streams,
            rtt_ms,
            end_reason,
            ended_by,
            connected_s: p.connected_at.map(|c| c.elapsed().as_secs_f64()),
        })
    }
}

/// What a running call has seen so far: the best ICE, peer connection and DTLS
/// states, when media connected, and why the call failed.
struct Progress {
    ice_state: String,
    peer_state: String,
    dtls_state: String,
    ice_up: bool,
    peer_up: bool,
    connected_at: Option<Instant>,
    setup_ms: Option<f64>,
    failure: Option<CallError>,
}

impl Default for Progress {
    fn default() -> Self {
        Self {
            ice_state: "new".to_owned(),
            peer_state: "new".to_owned(),
            dtls_state: "new".to_owned(),
            ice_up: false,
            peer_up: false,
            connected_at: None,
            setup_ms: None,
            failure: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn plugin_signal(name: &str, profile: &str, data: Value) -> Signal {
        Signal::PluginSignal {
            plugin: PLUGIN.into(),
            name: name.into(),
            profile: profile.into(),
            data: data.to_string(),
        }
    }

    #[test]
    fn decodes_the_contract_signals() {
        let s = plugin_signal(
            "call_candidates",
            "bob",
            json!({"sid": "s1", "candidates": [
                {"mline_index": 1, "mid": "1", "candidate": "candidate:1 1 UDP 2 127.0.0.1 5000 typ host"}
            ]}),
        );
        assert_eq!(
            CallSignal::decode(&s, "bob"),
            Some(CallSignal::Candidates {
                sid: "s1".into(),
                candidates: vec![(1, "candidate:1 1 UDP 2 127.0.0.1 5000 typ host".into())]
            })
        );
        // Another profile's signal is not ours.
        assert_eq!(CallSignal::decode(&s, "alice"), None);
        let ended = plugin_signal(
            "call_ended",
            "bob",
            json!({"sid": "s1", "reason": "decline"}),
        );
        assert_eq!(
            CallSignal::decode(&ended, "bob"),
            Some(CallSignal::Ended {
                sid: "s1".into(),
                reason: "decline".into(),
                text: None
            })
        );
        // An incoming call without its SDP is not usable.
        let bad = plugin_signal("call_incoming", "bob", json!({"sid": "s2", "peer": "a@x"}));
        assert_eq!(CallSignal::decode(&bad, "bob"), None);
    }

    #[test]
    fn mids_follow_mlines() {
        let sdp = "v=0\r\nm=audio 9 x 111\r\na=mid:audio0\r\nm=video 9 x 96\r\na=mid:video1\r\n";
        assert_eq!(sdp_mids(sdp), vec!["audio0", "video1"]);
    }

    #[test]
    fn ice_servers_become_webrtcbin_uris() {
        let list = vec![
            json!({"type": "stun", "host": "127.0.0.1", "port": 3478}),
            json!({"type": "turn", "host": "::1", "port": 3479, "transport": "udp",
                   "username": "u:1", "password": "p@ss"}),
        ];
        let (stun, turn) = ice_servers(&list);
        assert_eq!(stun.as_deref(), Some("stun://127.0.0.1:3478"));
        assert_eq!(turn, vec!["turn://u%3A1:p%40ss@[::1]:3479".to_owned()]);
    }

    #[test]
    fn report_text_and_json() {
        let report = CallReport {
            sid: "s1".into(),
            peer: "bob@localhost/x".into(),
            role: "initiator",
            ice_state: "connected".into(),
            dtls_state: "connected".into(),
            peer_state: "connected".into(),
            setup_ms: Some(77.4),
            streams: vec![StreamReport {
                kind: Kind::Audio,
                packets_sent: 10,
                packets_received: 9,
                bytes_sent: 1000,
                bytes_received: 900,
                probe_packets_sent: 10,
                probe_packets_received: 9,
                decoded_buffers: 9,
                stats_matched: true,
            }],
            rtt_ms: None,
            end_reason: "success".into(),
            ended_by: "local",
            connected_s: Some(3.0),
        };
        assert_eq!(
            report.text(),
            "call s1 with bob@localhost/x ended (local hung up): success\n\
             ICE: connected  DTLS: connected  set-up: 77 ms  RTT: unknown\n\
             audio: sent 10 packets (1000 bytes), received 9 packets (900 bytes), \
             9 buffers decoded\n"
        );
        let v = serde_json::to_value(&report).unwrap();
        assert_eq!(v["ice_state"], "connected");
        assert_eq!(v["streams"][0]["kind"], "audio");
        assert_eq!(v["streams"][0]["packets_received"], 9);
        assert!(v["rtt_ms"].is_null());
    }

    #[test]
    fn accept_from_compares_bare_jids() {
        assert_eq!(bare("alice@example.org/phone"), "alice@example.org");
        assert_eq!(bare("alice@example.org"), "alice@example.org");
    }
}
