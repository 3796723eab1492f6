//! The media half of a call: one webrtcbin, its sources and sinks, and what it reports.
//!
//! Why webrtcbin and not a hand-built ICE/DTLS/RTP pipeline: perchd speaks SDP to its
//! frontends (doc/calls.rst), and webrtcbin is GStreamer's JSEP peer connection; it
//! takes and gives SDP, trickles candidates and negotiates DTLS-SRTP. What this module
//! adds is what Jingle needs from it (doc/perch-call.rst, "The pipeline"):
//!
//! - `bundle-policy=balanced`, the libwebrtc and Conversations default, which works
//!   with BUNDLE peers, peers without BUNDLE and max-bundle peers alike;
//! - no TCP candidates (`ice-tcp=false`): XEP-0176 cannot carry them;
//! - an optional local address for libnice (see [`crate::nice`]);
//! - remote candidates queued until the remote description is set, because webrtcbin
//!   drops candidates for a session it does not know yet;
//! - RTP counted with pad probes on webrtcbin's own pads, per kind: in GStreamer 1.22
//!   the `kind` field of `get-stats` is unreliable, so streams are matched to get-stats
//!   entries by SSRC, read from the pads' caps.
//!
//! GStreamer calls back on its own threads; everything it reports reaches the call's
//! task as a [`MediaEvent`] on a channel, so no GLib main loop is needed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use gstreamer as gst;
use gstreamer::glib;
use gstreamer::prelude::*;
use gstreamer_sdp as gst_sdp;
use gstreamer_webrtc as gst_webrtc;
use serde::Serialize;
use tokio::sync::mpsc;

use crate::error::{CallError, Result};

/// A kind of media stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Audio,
    Video,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Audio => "audio",
            Kind::Video => "video",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        match s {
            "audio" => Some(Kind::Audio),
            "video" => Some(Kind::Video),
            _ => None,
        }
    }
}

/// Where sent media comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `audiotestsrc` (a sine) and `videotestsrc` (a ball), 320x240 at 15 fps.
    Test,
    /// The default devices (`autoaudiosrc`, `autovideosrc`).
    Auto,
}

/// Where received media goes once decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sink {
    /// Decoded and dropped (`fakesink`): the media is counted, nothing is played.
    Fake,
    /// The default devices (`autoaudiosink`, `autovideosink`).
    Auto,
}

/// How to build the pipeline of one call.
#[derive(Debug, Clone)]
pub struct MediaConfig {
    /// The streams to send, in m-line order.
    pub kinds: Vec<Kind>,
    pub source: Source,
    pub sink: Sink,
    /// The only address libnice gathers on (for calls on one machine: `127.0.0.1`).
    pub local_address: Option<String>,
    /// `stun://host:port`
    pub stun_server: Option<String>,
    /// `turn(s)://user:password@host:port`
    pub turn_servers: Vec<String>,
}

/// What the pipeline reports, from GStreamer's threads.
#[derive(Debug)]
pub enum MediaEvent {
    /// webrtcbin is ready for an offer.
    NegotiationNeeded,
    /// A local ICE candidate (`candidate:…`) for the m-line at `mline_index`.
    LocalCandidate { mline_index: u32, candidate: String },
    /// webrtcbin's `ice-connection-state` changed.
    IceState(String),
    /// webrtcbin's `connection-state` changed (ICE and DTLS together).
    PeerState(String),
    /// An element failed.
    Error(String),
}

/// RTP counted at webrtcbin's pads for one kind.
#[derive(Debug, Default, Clone)]
struct Counter {
    packets_sent: u64,
    bytes_sent: u64,
    packets_received: u64,
    bytes_received: u64,
    decoded_buffers: u64,
    ssrc_sent: Option<u32>,
    ssrc_received: Option<u32>,
}

type Counters = Arc<Mutex<HashMap<Kind, Counter>>>;

/// The facts of one stream at hang-up.
#[derive(Debug, Clone, Serialize)]
pub struct StreamReport {
    pub kind: Kind,
    /// From webrtcbin's get-stats (the SSRC's `outbound-rtp`), else from the probes.
    pub packets_sent: u64,
    pub packets_received: u64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    /// RTP counted by pad probes on webrtcbin's pads (before SRTP, headers included).
    pub probe_packets_sent: u64,
    pub probe_packets_received: u64,
    /// Decoded buffers that reached the sink.
    pub decoded_buffers: u64,
    /// Whether the get-stats figures were found (by SSRC) for the sent and received side.
    pub stats_matched: bool,
}

/// The pipeline of one call.
pub struct Media {
    pipeline: gst::Pipeline,
    webrtc: gst::Element,
    counters: Counters,
    remote_set: bool,
    pending_remote: Vec<(u32, String)>,
}

/// The elements a call needs, checked before building so a missing plugin is named.
fn check_elements(config: &MediaConfig) -> Result<()> {
    let mut needed = vec!["webrtcbin", "nicesrc", "nicesink", "dtlssrtpenc", "srtpenc"];
    for kind in &config.kinds {
        match kind {
            Kind::Audio => needed.extend([
                "opusenc",
                "opusdec",
                "rtpopuspay",
                "rtpopusdepay",
                "audioconvert",
                "audioresample",
            ]),
            Kind::Video => needed.extend([
                "vp8enc",
                "vp8dec",
                "rtpvp8pay",
                "rtpvp8depay",
                "videoconvert",
                "videoscale",
            ]),
        }
        needed.push(match (kind, config.source) {
            (Kind::Audio, Source::Test) => "audiotestsrc",
            (Kind::Video, Source::Test) => "videotestsrc",
            (Kind::Audio, Source::Auto) => "autoaudiosrc",
            (Kind::Video, Source::Auto) => "autovideosrc",
        });
    }
    for name in needed {
        if gst::ElementFactory::find(name).is_none() {
            return Err(CallError::MissingElement(name.to_owned()));
        }
    }
    Ok(())
}

/// The sending branch of one kind, ending in RTP caps webrtcbin turns into an m-line.
fn source_description(kind: Kind, source: Source) -> String {
    match kind {
        Kind::Audio => {
            let src = match source {
                Source::Test => "audiotestsrc is-live=true wave=sine volume=0.2",
                Source::Auto => "autoaudiosrc",
            };
            format!(
                "{src} ! audioconvert ! audioresample ! queue ! opusenc ! rtpopuspay pt=111 ! \
                 capsfilter caps=\"application/x-rtp,media=audio,encoding-name=OPUS,payload=111,clock-rate=48000\""
            )
        }
        Kind::Video => {
            let src = match source {
                Source::Test => "videotestsrc is-live=true pattern=ball",
                Source::Auto => "autovideosrc ! videoconvert ! videoscale ! videorate",
            };
            format!(
                "{src} ! video/x-raw,width=320,height=240,framerate=15/1 ! videoconvert ! \
                 queue ! vp8enc deadline=1 cpu-used=8 keyframe-max-dist=30 ! rtpvp8pay pt=96 ! \
                 capsfilter caps=\"application/x-rtp,media=video,encoding-name=VP8,payload=96,clock-rate=90000\""
            )
        }
    }
}

fn sink_description(kind: Kind, sink: Sink) -> String {
    let (decode, out) = match kind {
        Kind::Audio => (
            "rtpopusdepay ! opusdec",
            match sink {
                Sink::Fake => "fakesink name=out sync=false async=false",
                Sink::Auto => "audioconvert ! audioresample ! autoaudiosink name=out",
            },
        ),
        Kind::Video => (
            "rtpvp8depay ! vp8dec",
            match sink {
                Sink::Fake => "fakesink name=out sync=false async=false",
                Sink::Auto => "videoconvert ! autovideosink name=out",
            },
        ),
    };
    format!("queue ! {decode} ! {out}")
}

/// Counts buffers (or buffer lists) passing a pad.
fn count_probe(
    pad: &gst::Pad,
    counters: &Counters,
    kind: Kind,
    record: fn(&mut Counter, u64, u64),
) {
    let counters = counters.clone();
    pad.add_probe(
        gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST,
        move |_, info| {
            let (packets, bytes) = match &info.data {
                Some(gst::PadProbeData::Buffer(b)) => (1, b.size() as u64),
                Some(gst::PadProbeData::BufferList(l)) => (
                    l.len() as u64,
                    l.iter().map(|b| b.size() as u64).sum::<u64>(),
                ),
                _ => (0, 0),
            };
            if let Ok(mut map) = counters.lock() {
                record(map.entry(kind).or_default(), packets, bytes);
            }
            gst::PadProbeReturn::Ok
        },
    );
}

/// Counts decoded buffers; the first one of a stream is logged (the e2e tests wait
/// for that line: media flows and is decoded).
fn count_decoded(c: &mut Counter, packets: u64, _bytes: u64) {
    if c.decoded_buffers == 0 && packets > 0 {
        tracing::info!("first incoming media decoded");
    }
    c.decoded_buffers += packets;
}

fn caps_ssrc(pad: &gst::Pad) -> Option<u32> {
    let caps = pad.current_caps()?;
    caps.structure(0)?.get::<u32>("ssrc").ok()
}

fn enum_nick<T: ToValue>(value: T) -> String {
    let value = value.to_value();
    glib::EnumValue::from_value(&value)
        .map(|(_, v)| v.nick().to_owned())
        .unwrap_or_else(|| format!("{value:?}"))
}

/// A promise's reply, or the error webrtcbin put in it.
async fn settle(fut: gst::promise::PromiseFuture, what: &str) -> Result<Option<gst::Structure>> {
    let reply = fut
        .await
        .map_err(|e| CallError::Pipeline(format!("{what}: {e:?}")))?;
    let reply = reply.map(|r| r.to_owned());
    if let Some(s) = &reply
        && let Ok(err) = s.get::<glib::Error>("error")
    {
        return Err(CallError::Pipeline(format!("{what}: {err}")));
    }
    Ok(reply)
}

/// The media kinds of an SDP's m-lines, in order (unknown kinds left out).
pub fn sdp_kinds(sdp: &str) -> Vec<Kind> {
    sdp.lines()
        .filter_map(|l| l.strip_prefix("m="))
        .filter_map(|l| Kind::parse(l.split(' ').next().unwrap_or("")))
        .collect()
}

impl Media {
    /// Builds the pipeline (not yet playing); its events go to `events`.
    pub fn new(config: &MediaConfig, events: mpsc::UnboundedSender<MediaEvent>) -> Result<Self> {
        gst::init().map_err(|e| CallError::Pipeline(format!("GStreamer: {e}")))?;
        check_elements(config)?;
        let pipeline = gst::Pipeline::with_name("perch-call");
        let webrtc = Self::make_webrtcbin(config)?;
        pipeline.add(&webrtc)?;

        let counters: Counters = Arc::new(Mutex::new(HashMap::new()));
        Self::add_sources(config, &pipeline, &webrtc, &counters)?;
        Self::forward_webrtc_events(&webrtc, &events);
        Self::decode_incoming_streams(&webrtc, &pipeline, &counters, config.sink, events.clone());
        Self::forward_bus_errors(&pipeline, events);

        Ok(Self {
            pipeline,
            webrtc,
            counters,
            remote_set: false,
            pending_remote: Vec::new(),
        })
    }

    /// The webrtcbin, with the STUN and TURN servers, ICE over UDP only, and the
    /// local address ICE must use if one is set.
    fn make_webrtcbin(config: &MediaConfig) -> Result<gst::Element> {
        let webrtc = gst::ElementFactory::make("webrtcbin")
            .name("webrtc")
            .property_from_str("bundle-policy", "balanced")
            .build()
            .map_err(|e| CallError::Pipeline(format!("webrtcbin: {e}")))?;
        if let Some(stun) = &config.stun_server {
            webrtc.set_property("stun-server", stun);
        }
        for turn in &config.turn_servers {
            let _added: bool = webrtc.emit_by_name("add-turn-server", &[turn]);
        }
        let ice = webrtc.property::<gst_webrtc::WebRTCICE>("ice-agent");
        if ice.has_property("ice-tcp") {
            ice.set_property("ice-tcp", false);
        }
        if let Some(address) = &config.local_address {
            let agent = ice.property::<glib::Object>("agent");
            crate::nice::add_local_address(&agent, address).map_err(|why| {
                CallError::LocalAddress {
                    address: address.clone(),
                    why,
                }
            })?;
        }
        Ok(webrtc)
    }

    /// One source bin per media kind, linked to a new sink pad of the webrtcbin
    /// (whose packets are counted).
    fn add_sources(
        config: &MediaConfig,
        pipeline: &gst::Pipeline,
        webrtc: &gst::Element,
        counters: &Counters,
    ) -> Result<()> {
        for kind in &config.kinds {
            let bin =
                gst::parse::bin_from_description(&source_description(*kind, config.source), true)
                    .map_err(|e| CallError::Pipeline(format!("{} source: {e}", kind.as_str())))?;
            pipeline.add(&bin)?;
            let sink = webrtc
                .request_pad_simple("sink_%u")
                .ok_or_else(|| CallError::Pipeline("webrtcbin gave no sink pad".into()))?;
            let src = bin
                .static_pad("src")
                .ok_or_else(|| CallError::Pipeline("source bin has no src pad".into()))?;
            src.link(&sink).map_err(|e| {
                CallError::Pipeline(format!("linking the {} source: {e}", kind.as_str()))
            })?;
            count_probe(&sink, counters, *kind, |c, p, b| {
                c.packets_sent += p;
                c.bytes_sent += b;
            });
            counters
                .lock()
                .expect("fresh mutex")
                .entry(*kind)
                .or_default();
        }
        Ok(())
    }

    /// The webrtcbin's negotiation, candidates and states as [`MediaEvent`]s.
    fn forward_webrtc_events(webrtc: &gst::Element, events: &mpsc::UnboundedSender<MediaEvent>) {
        let tx = events.clone();
        webrtc.connect("on-negotiation-needed", false, move |_| {
            let _ = tx.send(MediaEvent::NegotiationNeeded);
            None
        });
        let tx = events.clone();
        webrtc.connect("on-ice-candidate", false, move |values| {
            let mline_index = values[1].get::<u32>().unwrap_or(0);
            let candidate = values[2].get::<String>().unwrap_or_default();
            let _ = tx.send(MediaEvent::LocalCandidate {
                mline_index,
                candidate,
            });
            None
        });
        let tx = events.clone();
        webrtc.connect_notify(Some("ice-connection-state"), move |w, _| {
            let state = w.property::<gst_webrtc::WebRTCICEConnectionState>("ice-connection-state");
            let _ = tx.send(MediaEvent::IceState(enum_nick(state)));
        });
        let tx = events.clone();
        webrtc.connect_notify(Some("connection-state"), move |w, _| {
            let state = w.property::<gst_webrtc::WebRTCPeerConnectionState>("connection-state");
            let _ = tx.send(MediaEvent::PeerState(enum_nick(state)));
        });
    }

    /// Each incoming stream is decoded by a sink bin of its kind (a kind we do not
    /// decode goes to a fakesink), its packets counted; a failure is a
    /// [`MediaEvent::Error`].
    fn decode_incoming_streams(
        webrtc: &gst::Element,
        pipeline: &gst::Pipeline,
        counters: &Counters,
        sink_kind: Sink,
        events: mpsc::UnboundedSender<MediaEvent>,
    ) {
        let weak_pipeline = pipeline.downgrade();
        let recv_counters = counters.clone();
        let tx = events;
        webrtc.connect_pad_added(move |_, pad| {
            if pad.direction() != gst::PadDirection::Src {
                return;
            }
            let Some(pipeline) = weak_pipeline.upgrade() else {
                return;
            };
            let caps = pad.current_caps().or_else(|| Some(pad.query_caps(None)));
            let media = caps
                .as_ref()
                .and_then(|c| c.structure(0))
                .and_then(|s| s.get::<&str>("media").ok())
                .and_then(Kind::parse);
            let Some(kind) = media else {
                // A stream of a kind we do not decode: drop it.
                if let Ok(fake) = gst::ElementFactory::make("fakesink")
                    .property("async", false)
                    .build()
                {
                    let _ = pipeline.add(&fake);
                    let _ = fake.sync_state_with_parent();
                    if let Some(sink) = fake.static_pad("sink") {
                        let _ = pad.link(&sink);
                    }
                }
                return;
            };
            if let Ok(mut map) = recv_counters.lock() {
                map.entry(kind).or_default().ssrc_received = caps_ssrc(pad);
            }
            count_probe(pad, &recv_counters, kind, |c, p, b| {
                c.packets_received += p;
                c.bytes_received += b;
            });
            let linked = (|| -> std::result::Result<(), String> {
                let bin =
                    gst::parse::bin_from_description(&sink_description(kind, sink_kind), true)
                        .map_err(|e| e.to_string())?;
                pipeline.add(&bin).map_err(|e| e.to_string())?;
                bin.sync_state_with_parent().map_err(|e| e.to_string())?;
                let sink = bin.static_pad("sink").ok_or("no sink pad")?;
                pad.link(&sink).map_err(|e| e.to_string())?;
                if let Some(out) = bin.by_name("out")
                    && let Some(out_pad) = out.static_pad("sink")
                {
                    count_probe(&out_pad, &recv_counters, kind, count_decoded);
                }
                Ok(())
            })();
            if let Err(e) = linked {
                let _ = tx.send(MediaEvent::Error(format!(
                    "cannot decode the incoming {} stream: {e}",
                    kind.as_str()
                )));
            }
        });
    }

    /// Errors posted on the pipeline's bus as [`MediaEvent::Error`]s.
    fn forward_bus_errors(pipeline: &gst::Pipeline, events: mpsc::UnboundedSender<MediaEvent>) {
        let bus = pipeline.bus().expect("a pipeline has a bus");
        let tx = events;
        bus.set_sync_handler(move |_, msg| {
            if let gst::MessageView::Error(err) = msg.view() {
                let from = msg
                    .src()
                    .map(|s| s.path_string().to_string())
                    .unwrap_or_default();
                let _ = tx.send(MediaEvent::Error(format!("{from}: {}", err.error())));
            }
            gst::BusSyncReply::Drop
        });
    }

    /// Starts the pipeline (sources run, candidates gather once a description is set).
    pub fn play(&self) -> Result<()> {
        self.pipeline
            .set_state(gst::State::Playing)
            .map_err(|e| CallError::Pipeline(format!("the pipeline would not play: {e}")))?;
        Ok(())
    }

    async fn set_local(&self, desc: &gst_webrtc::WebRTCSessionDescription) -> Result<()> {
        let (promise, fut) = gst::Promise::new_future();
        self.webrtc
            .emit_by_name::<()>("set-local-description", &[desc, &promise]);
        settle(fut, "set-local-description").await?;
        Ok(())
    }

    async fn create(&self, kind: &str) -> Result<String> {
        let (promise, fut) = gst::Promise::new_future();
        self.webrtc.emit_by_name::<()>(
            &format!("create-{kind}"),
            &[&None::<gst::Structure>, &promise],
        );
        let reply = settle(fut, &format!("create-{kind}"))
            .await?
            .ok_or_else(|| CallError::Pipeline(format!("create-{kind} gave no reply")))?;
        let desc = reply
            .get::<gst_webrtc::WebRTCSessionDescription>(kind)
            .map_err(|e| CallError::Pipeline(format!("create-{kind}: {e}")))?;
        self.set_local(&desc).await?;
        desc.sdp()
            .as_text()
            .map_err(|e| CallError::Pipeline(format!("{kind} as text: {e}")))
    }

    async fn set_remote(&mut self, type_: gst_webrtc::WebRTCSDPType, sdp: &str) -> Result<()> {
        let message = gst_sdp::SDPMessage::parse_buffer(sdp.as_bytes())
            .map_err(|e| CallError::BadSdp(e.to_string()))?;
        let desc = gst_webrtc::WebRTCSessionDescription::new(type_, message);
        let (promise, fut) = gst::Promise::new_future();
        self.webrtc
            .emit_by_name::<()>("set-remote-description", &[&desc, &promise]);
        settle(fut, "set-remote-description").await?;
        self.remote_set = true;
        for (mline, candidate) in std::mem::take(&mut self.pending_remote) {
            self.add_candidate_now(mline, &candidate);
        }
        Ok(())
    }

    /// Makes the offer (and sets it as the local description).
    pub async fn create_offer(&self) -> Result<String> {
        self.create("offer").await
    }

    /// Takes the peer's answer.
    pub async fn apply_answer(&mut self, sdp: &str) -> Result<()> {
        self.set_remote(gst_webrtc::WebRTCSDPType::Answer, sdp)
            .await
    }

    /// Takes the peer's offer and makes the answer (set as the local description).
    pub async fn answer_offer(&mut self, sdp: &str) -> Result<String> {
        self.set_remote(gst_webrtc::WebRTCSDPType::Offer, sdp)
            .await?;
        self.create("answer").await
    }

    fn add_candidate_now(&self, mline: u32, candidate: &str) {
        self.webrtc
            .emit_by_name::<()>("add-ice-candidate", &[&mline, &candidate]);
    }

    /// A remote candidate: given to webrtcbin now, or once the remote description is set.
    /// An empty one (end of candidates) is ignored.
    pub fn add_remote_candidate(&mut self, mline: u32, candidate: &str) {
        let candidate = candidate.trim();
        if candidate.is_empty() {
            return;
        }
        let candidate = if candidate.starts_with("candidate:") {
            candidate.to_owned()
        } else {
            format!("candidate:{candidate}")
        };
        if self.remote_set {
            self.add_candidate_now(mline, &candidate);
        } else {
            self.pending_remote.push((mline, candidate));
        }
    }

    /// The state of each DTLS transport in use (one per m-line, or one for a BUNDLE),
    /// read from the transceivers' senders.
    pub fn dtls_states(&self) -> Vec<String> {
        let mut states = Vec::new();
        let mut seen = Vec::new();
        for idx in 0i32.. {
            let Some(transceiver) = self
                .webrtc
                .emit_by_name::<Option<gst_webrtc::WebRTCRTPTransceiver>>(
                    "get-transceiver",
                    &[&idx],
                )
            else {
                break;
            };
            let transport = transceiver.sender().and_then(|s| s.transport());
            if let Some(t) = transport
                && !seen.contains(&t)
            {
                states.push(enum_nick(t.state()));
                seen.push(t);
            }
        }
        states
    }

    /// The streams' figures (get-stats matched by SSRC, probes) and the RTT in ms.
    pub async fn report(&self) -> (Vec<StreamReport>, Option<f64>) {
        let mut counters = self.counters.lock().map(|m| m.clone()).unwrap_or_default();
        // The SSRC we send with is in the caps of webrtcbin's sink pads.
        for pad in self.webrtc.sink_pads() {
            if let (Some(ssrc), Some(kind)) = (
                caps_ssrc(&pad),
                pad.current_caps().and_then(|c| {
                    c.structure(0)
                        .and_then(|s| s.get::<&str>("media").ok().and_then(Kind::parse))
                }),
            ) {
                counters.entry(kind).or_default().ssrc_sent = Some(ssrc);
            }
        }
        let stats = self.stats().await;
        let mut outbound = HashMap::new();
        let mut inbound = HashMap::new();
        let mut rtt: Option<f64> = None;
        for s in stats.iter().flat_map(|s| s.iter()) {
            let Ok(entry) = s.1.get::<gst::Structure>() else {
                continue;
            };
            let ty = entry
                .get::<gst_webrtc::WebRTCStatsType>("type")
                .map(enum_nick)
                .unwrap_or_default();
            let num = |f: &str| {
                entry
                    .value(f)
                    .ok()
                    .and_then(|v| v.transform::<u64>().ok())
                    .and_then(|v| v.get::<u64>().ok())
            };
            let ssrc = entry
                .value("ssrc")
                .ok()
                .and_then(|v| v.transform::<u64>().ok())
                .and_then(|v| v.get::<u64>().ok());
            match ty.as_str() {
                "outbound-rtp" => {
                    if let Some(ssrc) = ssrc {
                        outbound.insert(ssrc, (num("packets-sent"), num("bytes-sent")));
                    }
                }
                "inbound-rtp" => {
                    if let Some(ssrc) = ssrc {
                        inbound.insert(ssrc, (num("packets-received"), num("bytes-received")));
                    }
                }
                "remote-inbound-rtp" => {
                    if let Ok(r) = entry.get::<f64>("round-trip-time")
                        && r > 0.0
                    {
                        rtt = Some(rtt.map_or(r, |old: f64| old.max(r)));
                    }
                }
                _ => {}
            }
        }
        let mut kinds: Vec<_> = counters.keys().copied().collect();
        kinds.sort();
        let streams = kinds
            .into_iter()
            .map(|kind| {
                let c = &counters[&kind];
                let out = c.ssrc_sent.and_then(|s| outbound.get(&u64::from(s)));
                let inn = c.ssrc_received.and_then(|s| inbound.get(&u64::from(s)));
                StreamReport {
                    kind,
                    packets_sent: out.and_then(|o| o.0).unwrap_or(c.packets_sent),
                    bytes_sent: out.and_then(|o| o.1).unwrap_or(c.bytes_sent),
                    packets_received: inn.and_then(|i| i.0).unwrap_or(c.packets_received),
                    bytes_received: inn.and_then(|i| i.1).unwrap_or(c.bytes_received),
                    probe_packets_sent: c.packets_sent,
                    probe_packets_received: c.packets_received,
                    decoded_buffers: c.decoded_buffers,
                    stats_matched: out.is_some() && (inn.is_some() || c.ssrc_received.is_none()),
                }
            })
            .collect();
        (streams, rtt.map(|r| r * 1000.0))
    }

    async fn stats(&self) -> Option<gst::Structure> {
        let (promise, fut) = gst::Promise::new_future();
        self.webrtc
            .emit_by_name::<()>("get-stats", &[&None::<gst::Pad>, &promise]);
        let reply =
            tokio::time::timeout(std::time::Duration::from_secs(2), settle(fut, "get-stats")).await;
        match reply {
            Ok(Ok(s)) => s,
            _ => None,
        }
    }

    /// Stops everything (the pipeline goes to NULL).
    pub fn stop(&self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

impl Drop for Media {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sdp_kinds_follow_mline_order() {
        let sdp = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\n\
                   m=video 9 UDP/TLS/RTP/SAVPF 96\r\nm=application 9 x 1\r\n";
        assert_eq!(sdp_kinds(sdp), vec![Kind::Audio, Kind::Video]);
    }
}
