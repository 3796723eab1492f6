//! The media module on its own: two pipelines exchange SDP and trickled candidates
//! directly (no perchd), over 127.0.0.1, and must connect ICE and DTLS and receive
//! RTP on every stream. It needs the GStreamer packages (scripts/test installs them);
//! without them it fails naming the missing element.

// A test reads as one scenario, start to end: the one-screen rule is for the code
// under test (`[workspace.lints]`).
#![allow(clippy::too_many_lines)]

use std::time::{Duration, Instant};

use perch_call::media::{Kind, Media, MediaConfig, MediaEvent, Sink, Source};
use tokio::sync::mpsc;

fn config(kinds: &[Kind]) -> MediaConfig {
    MediaConfig {
        kinds: kinds.to_vec(),
        source: Source::Test,
        sink: Sink::Fake,
        local_address: Some("127.0.0.1".into()),
        stun_server: None,
        turn_servers: Vec::new(),
    }
}

#[derive(Default)]
struct Seen {
    ice: bool,
    peer: bool,
}

fn note(seen: &mut Seen, ev: &MediaEvent) {
    match ev {
        MediaEvent::IceState(s) if s == "connected" || s == "completed" => seen.ice = true,
        MediaEvent::PeerState(s) if s == "connected" => seen.peer = true,
        MediaEvent::Error(e) => panic!("pipeline error: {e}"),
        _ => {}
    }
}

async fn call(kinds: &[Kind]) {
    let (tx_a, mut ev_a) = mpsc::unbounded_channel();
    let (tx_b, mut ev_b) = mpsc::unbounded_channel();
    let mut a = Media::new(&config(kinds), tx_a).expect("pipeline A");
    let mut b = Media::new(&config(kinds), tx_b).expect("pipeline B");
    a.play().unwrap();
    b.play().unwrap();
    loop {
        match tokio::time::timeout(Duration::from_secs(10), ev_a.recv()).await {
            Ok(Some(MediaEvent::NegotiationNeeded)) => break,
            Ok(Some(other)) => note(&mut Seen::default(), &other),
            _ => panic!("A never asked for negotiation"),
        }
    }
    let offer = a.create_offer().await.expect("offer");
    assert_eq!(perch_call::media::sdp_kinds(&offer), kinds);
    let answer = b.answer_offer(&offer).await.expect("answer");
    assert_eq!(perch_call::media::sdp_kinds(&answer), kinds);
    let answered = Instant::now();
    a.apply_answer(&answer).await.expect("apply answer");
    let (mut seen_a, mut seen_b) = (Seen::default(), Seen::default());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let mut connected_at = None;
    loop {
        tokio::select! {
            ev = ev_a.recv() => {
                let ev = ev.expect("A's events");
                note(&mut seen_a, &ev);
                if let MediaEvent::LocalCandidate { mline_index, candidate } = ev {
                    b.add_remote_candidate(mline_index, &candidate);
                }
            }
            ev = ev_b.recv() => {
                let ev = ev.expect("B's events");
                note(&mut seen_b, &ev);
                if let MediaEvent::LocalCandidate { mline_index, candidate } = ev {
                    a.add_remote_candidate(mline_index, &candidate);
                }
            }
            _ = tokio::time::sleep_until(deadline) => break,
        }
        if connected_at.is_none() && seen_a.ice && seen_a.peer && seen_b.ice && seen_b.peer {
            connected_at = Some(answered.elapsed());
            // Let media flow for a while.
            let more = tokio::time::Instant::now() + Duration::from_secs(2);
            if more < deadline {
                tokio::time::sleep_until(more).await;
            }
            break;
        }
    }
    let took = connected_at.expect("ICE and DTLS connected on both sides within 15 s");
    assert!(took < Duration::from_secs(10), "set-up took {took:?}");
    for (name, media) in [("A", &a), ("B", &b)] {
        let (streams, rtt) = media.report().await;
        eprintln!("{name}: {streams:?}, RTT {rtt:?} ms, set-up {took:?}");
        assert_eq!(
            streams.iter().map(|s| s.kind).collect::<Vec<_>>(),
            kinds,
            "{name}'s streams"
        );
        for s in &streams {
            assert!(
                s.probe_packets_sent > 0,
                "{name} sent no {:?}: {s:?}",
                s.kind
            );
            assert!(
                s.probe_packets_received > 0,
                "{name} received no {:?}: {s:?}",
                s.kind
            );
            assert!(
                s.decoded_buffers > 0,
                "{name} decoded no {:?}: {s:?}",
                s.kind
            );
            assert!(s.packets_sent > 0 && s.bytes_sent > 0, "{name}: {s:?}");
        }
    }
    a.stop();
    b.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audio_pipelines_connect_over_loopback() {
    call(&[Kind::Audio]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audio_video_pipelines_connect_over_loopback() {
    call(&[Kind::Audio, Kind::Video]).await;
}

#[test]
fn a_bad_local_address_is_a_typed_error() {
    let (tx, _rx) = mpsc::unbounded_channel();
    let mut bad = config(&[Kind::Audio]);
    bad.local_address = Some("not-an-address".into());
    match Media::new(&bad, tx) {
        Err(e @ perch_call::CallError::LocalAddress { .. }) => {
            assert_eq!(e.name(), "LocalAddress");
            assert!(e.one_line().contains("not-an-address"), "{e}");
        }
        Err(e) => panic!("expected LocalAddress, got {e}"),
        Ok(_) => panic!("a bad local address was accepted"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unparsable_answer_is_a_typed_error() {
    let (tx, _rx) = mpsc::unbounded_channel();
    let mut a = Media::new(&config(&[Kind::Audio]), tx).expect("pipeline");
    a.play().unwrap();
    let err = a.apply_answer("this is not SDP").await.unwrap_err();
    assert!(
        matches!(err.name(), "BadSdp" | "Pipeline"),
        "expected a typed SDP error, got {err}"
    );
    a.stop();
}

/// Real offers (Chromium 156 and webrtcbin 1.22, captured, in
/// plugins/codec/tests/fixtures/jingle) taken through perchd's conversion, SDP -> Jingle
/// -> SDP, as a callee's frontend receives them in `call_incoming`: a real webrtcbin
/// must accept each as its remote description and answer every media line, with the
/// offer's mids.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdp_perchd_writes_from_jingle_is_accepted_by_webrtcbin() {
    use perch_codec::xep_0167::sdp::{Role, to_jingle, to_sdp};
    // Read when the test runs, not baked in when it is built: a target dir kept
    // across clones at other paths reuses the built test.
    let fixtures = format!(
        "{}/../../plugins/codec/tests/fixtures/jingle",
        std::env::var("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR")
    );
    for name in ["chromium-156-offer.sdp", "webrtcbin-1.22-offer.sdp"] {
        let captured = std::fs::read_to_string(format!("{fixtures}/{name}"))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let jingle = to_jingle(&captured, Role::Initiator, Role::Initiator)
            .unwrap_or_else(|e| panic!("{name} to Jingle: {e}"));
        let offer = to_sdp(
            &jingle.contents,
            jingle.group.as_ref(),
            Role::Initiator,
            "sid1",
        );
        let kinds = perch_call::media::sdp_kinds(&offer);
        assert_eq!(
            kinds,
            [Kind::Audio, Kind::Video],
            "{name}: media lines of\n{offer}"
        );
        let (tx, _events) = mpsc::unbounded_channel();
        let mut media = Media::new(&config(&kinds), tx).expect("pipeline");
        media.play().unwrap();
        let answer = tokio::time::timeout(Duration::from_secs(10), media.answer_offer(&offer))
            .await
            .unwrap_or_else(|_| panic!("{name}: webrtcbin did not answer in 10 s"))
            .unwrap_or_else(|e| panic!("{name}: webrtcbin refused perchd's SDP: {e}\n{offer}"));
        let mids = |sdp: &str| -> Vec<String> {
            sdp.lines()
                .filter_map(|l| l.trim().strip_prefix("a=mid:").map(str::to_owned))
                .collect()
        };
        assert_eq!(mids(&answer), mids(&offer), "{name}: answer\n{answer}");
        assert_eq!(
            perch_call::media::sdp_kinds(&answer),
            kinds,
            "{name}: answer\n{answer}"
        );
        media.stop();
    }
}
