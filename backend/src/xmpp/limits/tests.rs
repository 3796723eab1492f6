use super::*;
use proptest::prelude::*;

const HEADER: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
    xmlns:stream='http://etherx.jabber.org/streams' id='s1' from='localhost' version='1.0' \
    xml:lang='en'>";

fn small(max_depth: u32, max_bytes: usize) -> Limits {
    Limits {
        max_depth,
        max_bytes,
    }
}

/// Feeds `input` in pieces cut at `cuts` (sorted offsets); returns what came out.
fn run_cut(limits: Limits, input: &[u8], cuts: &[usize]) -> Result<(Vec<u8>, Scanner), LimitError> {
    let mut s = Scanner::new(limits);
    let mut out = Vec::new();
    let mut start = 0;
    for &c in cuts.iter().chain(std::iter::once(&input.len())) {
        let c = c.clamp(start, input.len());
        s.feed(&input[start..c], &mut out)?;
        assert!(
            s.buf.len() <= limits.max_bytes,
            "held {} bytes, over the limit {}",
            s.buf.len(),
            limits.max_bytes
        );
        start = c;
    }
    Ok((out, s))
}

fn run(limits: Limits, input: &str) -> Result<String, LimitError> {
    run_cut(limits, input.as_bytes(), &[]).map(|(o, _)| String::from_utf8(o).unwrap())
}

/// Whole, cut once at every offset, and byte by byte: always the same output.
fn same_every_way(limits: Limits, input: &str) -> String {
    let whole = run(limits, input).expect("whole input");
    for cut in 0..=input.len() {
        let (o, _) = run_cut(limits, input.as_bytes(), &[cut]).expect("cut input");
        assert_eq!(String::from_utf8(o).unwrap(), whole, "cut at {cut}");
    }
    let cuts: Vec<usize> = (0..input.len()).collect();
    let (o, _) = run_cut(limits, input.as_bytes(), &cuts).expect("bytewise input");
    assert_eq!(String::from_utf8(o).unwrap(), whole, "byte by byte");
    whole
}

fn marker(reason: &str, limit: u64) -> String {
    format!("<perch-refused xmlns='urn:perch:limits' reason='{reason}' limit='{limit}'/>")
}

#[test]
fn a_valid_stream_passes_byte_for_byte() {
    let input = format!(
        "{HEADER}<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'>\
         <required/></starttls></stream:features>\n \
         <message from='bob@localhost/x' to='alice@localhost' type='chat' id='m1'>\
         <body>hi &amp; &lt;you&gt; &#x263A;</body><x xmlns=\"urn:x\" a=\"it's\"/></message>\
         <iq type='result' id='i1'/><r xmlns='urn:xmpp:sm:3'/>\
         <presence from='bob@localhost/x'><show>away</show></presence>  </stream:stream>"
    );
    assert_eq!(same_every_way(Limits::default(), &input), input);
}

#[test]
fn stream_restart_after_sasl_passes() {
    let input = format!(
        "{HEADER}<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>\
         <mechanism>PLAIN</mechanism></mechanisms></stream:features>\
         <success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>\
         {HEADER}<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>\
         </stream:features><iq type='result' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>\
         <jid>a@localhost/r</jid></bind></iq>"
    );
    let (out, s) = run_cut(small(3, 4096), input.as_bytes(), &[]).unwrap();
    assert_eq!(String::from_utf8(out).unwrap(), input);
    assert_eq!(s.elements(), 4, "features, success, features, iq");
    // The restart header is not taken for an element that never ends.
    assert_eq!(s.depth, 1);
    assert_eq!(same_every_way(small(3, 4096), &input), input);
}

#[test]
fn attribute_values_may_hold_gt_slash_and_the_other_quote() {
    let input = format!(
        "{HEADER}<message id='a>b/c' x=\"'/>\"><body a='</message>'>t</body></message>\
         <iq type='get' id=\"&quot;>\"/>"
    );
    let (out, s) = run_cut(small(2, 4096), input.as_bytes(), &[]).unwrap();
    assert_eq!(String::from_utf8(out).unwrap(), input);
    assert_eq!(s.elements(), 2);
    same_every_way(small(2, 4096), &input);
}

#[test]
fn cdata_may_hold_markup() {
    let input =
        format!("{HEADER}<message><body><![CDATA[a<b></body> ]] ]> ]]]></body></message><r/>");
    let (out, s) = run_cut(small(2, 4096), input.as_bytes(), &[]).unwrap();
    assert_eq!(String::from_utf8(out).unwrap(), input);
    assert_eq!(s.elements(), 2);
    same_every_way(small(2, 4096), &input);
}

#[test]
fn a_deep_stanza_is_replaced_by_its_start_tag_and_a_marker() {
    let deep = format!(
        "<message from='eve@evil.example/x' id='deep' type='chat'>{}{}</message>",
        "<a>".repeat(5000),
        "</a>".repeat(5000)
    );
    let next = "<message from='bob@localhost/x' id='ok'><body>fine</body></message>";
    let input = format!("{HEADER}{deep}{next}");
    let (out, mut s) = run_cut(Limits::default(), input.as_bytes(), &[]).unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        format!(
            "{HEADER}<message from='eve@evil.example/x' id='deep' type='chat'>{}</message>{next}",
            marker("depth", 64)
        )
    );
    assert_eq!(s.elements(), 2);
    let r = s.take_refusals();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].reason, Reason::Depth);
    assert_eq!(r[0].from.as_deref(), Some("eve@evil.example/x"));
    assert_eq!(r[0].id.as_deref(), Some("deep"));
    assert_eq!(r[0].kind.as_deref(), Some("chat"));
    assert_eq!(r[0].depth, 5001);
    assert_eq!(r[0].bytes, deep.len() as u64);
}

#[test]
fn the_depth_limit_is_inclusive() {
    // message (1) > a (2) > b (3): passes with 3, refused with 2.
    let stanza = "<message><a><b/></a></message>";
    let input = format!("{HEADER}{stanza}");
    assert_eq!(run(small(3, 4096), &input).unwrap(), input);
    assert_eq!(
        run(small(2, 4096), &input).unwrap(),
        format!("{HEADER}<message>{}</message>", marker("depth", 2))
    );
    same_every_way(small(2, 4096), &input);
}

#[test]
fn an_oversized_stanza_is_skipped_without_being_held() {
    let body = "x".repeat(100_000);
    let big = format!("<message from='eve@evil.example' id='big'><body>{body}</body></message>");
    let next = "<message id='ok'><body>fine</body></message>";
    let input = format!("{HEADER}{big}{next}");
    // Read in 1 KiB pieces: run_cut checks that never more than the limit is held.
    let cuts: Vec<usize> = (1..input.len() / 1024).map(|k| k * 1024).collect();
    let (out, mut s) = run_cut(small(8, 4096), input.as_bytes(), &cuts).unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        format!(
            "{HEADER}<message from='eve@evil.example' id='big'>{}</message>{next}",
            marker("size", 4096)
        )
    );
    assert!(s.buf.capacity() <= KEEP_CAPACITY, "{}", s.buf.capacity());
    let r = s.take_refusals();
    assert_eq!((r[0].reason, r[0].bytes), (Reason::Size, big.len() as u64));
}

#[test]
fn a_stanza_exactly_at_the_size_limit_passes() {
    // (The limit applies to the stream header too: keep it short.)
    let header = "<stream:stream>";
    let stanza = "<message><body>12345</body></message>";
    let input = format!("{header}{stanza}");
    assert_eq!(run(small(8, stanza.len()), &input).unwrap(), input);
    assert_eq!(
        run(small(8, stanza.len() - 1), &input).unwrap(),
        format!(
            "{header}<message>{}</message>",
            marker("size", stanza.len() as u64 - 1)
        )
    );
}

#[test]
fn an_oversized_start_tag_is_rebuilt_from_its_routing_attributes() {
    let junk = "j".repeat(6000);
    let long_id = "i".repeat(4000);
    let input = format!(
        "{HEADER}<message xmlns:e='urn:e' from='eve@evil.example' junk='{junk}' \
         to='alice@localhost' from='dup' type=\"chat\" xml:lang='en' x='{long_id}'>\
         <body>b</body></message><iq type='get' id='after'/>"
    );
    let out = same_every_way(small(8, 4096), &input);
    assert_eq!(
        out,
        format!(
            "{HEADER}<message xmlns:e='urn:e' from='eve@evil.example' to='alice@localhost' \
             type=\"chat\" xml:lang='en'>{}</message><iq type='get' id='after'/>",
            marker("size", 4096)
        )
    );
    // Also self-closing.
    let input = format!("{HEADER}<presence from='eve@evil.example' junk='{junk}'/>");
    assert_eq!(
        run(small(8, 4096), &input).unwrap(),
        format!(
            "{HEADER}<presence from='eve@evil.example'>{}</presence>",
            marker("size", 4096)
        )
    );
}

#[test]
fn names_and_values_longer_than_the_parser_takes_are_refused() {
    let long = "v".repeat(MAX_TOKEN + 1);
    let ok = "v".repeat(MAX_TOKEN);
    let input = format!("{HEADER}<message id='m'><x a='{ok}'/></message>");
    assert_eq!(run(Limits::default(), &input).unwrap(), input);
    for stanza in [
        format!("<message id='m'><x a='{long}'/></message>"),
        format!("<message id='m'><x {long}='1'/></message>"),
        format!("<message id='m'><{long}/></message>"),
    ] {
        let input = format!("{HEADER}{stanza}<r/>");
        assert_eq!(
            run(Limits::default(), &input).unwrap(),
            format!(
                "{HEADER}<message id='m'>{}</message><r/>",
                marker("token", 8192)
            ),
            "{}",
            &stanza[..40]
        );
    }
    // In the stanza's own start tag: rebuilt without it.
    let input = format!("{HEADER}<message id='m' a='{long}'><body/></message>");
    assert_eq!(
        run(Limits::default(), &input).unwrap(),
        format!(
            "{HEADER}<message id='m'>{}</message>",
            marker("token", 8192)
        )
    );
    // A top-level element whose very name is too long cannot be rebuilt.
    let input = format!("{HEADER}<{long}/>");
    assert_eq!(
        run(Limits::default(), &input),
        Err(LimitError::TooLong {
            what: "an element name"
        })
    );
}

#[test]
fn restricted_xml_ends_the_stream() {
    for (bad, what) in [
        ("<!-- hi -->", "a comment"),
        ("<message><!-- hi --></message>", "a comment"),
        ("<?php x?>", "a processing instruction"),
        (
            "<message><?xml-stylesheet x?></message>",
            "a processing instruction",
        ),
        (
            "<message><?xml version='1.0'?></message>",
            "an XML declaration inside an element",
        ),
        (
            "<!DOCTYPE x [<!ENTITY a 'b'>]>",
            "a document type declaration",
        ),
    ] {
        let input = format!("{HEADER}<r/>{bad}<r/>");
        let mut s = Scanner::new(Limits::default());
        let mut out = Vec::new();
        assert_eq!(
            s.feed(input.as_bytes(), &mut out),
            Err(LimitError::Restricted(what)),
            "{bad}"
        );
        // What came before it still goes out; later input is refused the same way.
        assert!(String::from_utf8_lossy(&out).starts_with(&format!("{HEADER}<r/>")));
        assert_eq!(s.feed(b"<r/>", &mut out), Err(LimitError::Restricted(what)));
    }
}

#[test]
fn an_oversized_stream_header_ends_the_stream() {
    let input = format!("<stream:stream a='{}'>", "x".repeat(5000));
    assert_eq!(
        run(small(8, 4096), &input),
        Err(LimitError::TooLarge {
            what: "a stream header",
            limit: 4096
        })
    );
}

#[test]
fn refused_iqs_are_answered_or_fail_their_waiter() {
    let parse = |s: &str| Iq::try_from(s.parse::<Element>().unwrap()).unwrap();
    let m = marker("depth", 64);
    let get = parse(&format!(
        "<iq xmlns='jabber:client' type='get' id='q1' from='eve@evil.example/x'>{m}</iq>"
    ));
    match check_iq(get) {
        IqCheck::Answer(Iq::Error { to, id, error, .. }) => {
            assert_eq!(to.unwrap().to_string(), "eve@evil.example/x");
            assert_eq!(id, "q1");
            assert_eq!(error.defined_condition, DefinedCondition::PolicyViolation);
        }
        other => panic!("{other:?}"),
    }
    let result = parse(&format!(
        "<iq xmlns='jabber:client' type='result' id='q2'>{m}</iq>"
    ));
    assert!(matches!(check_iq(result), IqCheck::Fail { id, .. } if id == "q2"));
    let fine =
        parse("<iq xmlns='jabber:client' type='get' id='q3'><ping xmlns='urn:xmpp:ping'/></iq>");
    assert!(matches!(check_iq(fine), IqCheck::Pass(_)));
    let msg: Element = format!("<message xmlns='jabber:client'>{m}</message>")
        .parse()
        .unwrap();
    let msg = tokio_xmpp::parsers::message::Message::try_from(msg).unwrap();
    assert_eq!(refusal(&msg.payloads), Some("depth"));
}

/// Through tokio-xmpp's own stream reader: the refused stanza arrives as a stanza with
/// the marker, the next one intact; without the limits this input aborts the process.
#[tokio::test]
async fn tokio_xmpp_reads_the_replacement() {
    use futures::StreamExt;
    use tokio::io::{AsyncReadExt, AsyncWriteExt, BufStream};
    use tokio_xmpp::Stanza;
    use tokio_xmpp::parsers::ns;
    use tokio_xmpp::xmlstream::{StreamHeader, Timeouts, XmppStreamElement, initiate_stream};

    let (client, mut server) = tokio::io::duplex(64 * 1024);
    let log = LogContext {
        profile: "p".into(),
        jid: "alice@localhost".into(),
    };
    let server_task = tokio::spawn(async move {
        let mut header = [0u8; 1];
        // Wait for the client's header to begin, then answer with ours and stanzas.
        server.read_exact(&mut header).await.unwrap();
        let deep = format!(
            "<message from='eve@evil.example/x' id='deep'>{}{}</message>",
            "<a>".repeat(5000),
            "</a>".repeat(5000)
        );
        let text = format!(
            "{HEADER}<stream:features/>{deep}<iq type='get' id='q' from='eve@evil.example/x'>\
             <query xmlns='urn:x'>{}</query></iq>\
             <message from='bob@localhost/x' id='ok'><body>fine</body></message>",
            "y".repeat(20_000)
        );
        for chunk in text.as_bytes().chunks(1000) {
            server.write_all(chunk).await.unwrap();
        }
        // Keep the server side open until the client is done.
        let mut rest = Vec::new();
        let _ = server.read_to_end(&mut rest).await;
    });
    let stream = initiate_stream(
        BufStream::new(Limited::new(client, small(64, 8192), log)),
        ns::JABBER_CLIENT,
        StreamHeader {
            to: Some("localhost".into()),
            from: None,
            id: None,
        },
        Timeouts::tight(),
    )
    .await
    .unwrap();
    let (_features, mut stream) = stream.recv_features::<XmppStreamElement>().await.unwrap();
    let mut got = Vec::new();
    while got.len() < 3 {
        match stream.next().await.unwrap().unwrap() {
            XmppStreamElement::Stanza(s) => got.push(s),
            other => panic!("{other:?}"),
        }
    }
    match &got[0] {
        Stanza::Message(m) => {
            assert_eq!(refusal(&m.payloads), Some("depth"));
            assert_eq!(m.from.as_ref().unwrap().to_string(), "eve@evil.example/x");
        }
        other => panic!("{other:?}"),
    }
    match &got[1] {
        Stanza::Iq(iq) => assert!(matches!(check_iq(iq.clone()), IqCheck::Answer(_))),
        other => panic!("{other:?}"),
    }
    match &got[2] {
        Stanza::Message(m) => {
            assert_eq!(refusal(&m.payloads), None);
            assert_eq!(m.bodies.values().next().map(String::as_str), Some("fine"));
        }
        other => panic!("{other:?}"),
    }
    drop(stream);
    server_task.await.unwrap();
}

// --- property tests -------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Node {
    Text(String),
    CData(String),
    Element {
        name: String,
        attrs: Vec<(String, String, char)>,
        children: Vec<Node>,
    },
}

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("a".to_owned()),
        Just("body".to_owned()),
        Just("x:item".to_owned()),
        "[a-z][a-z0-9_.-]{0,6}",
    ]
}

fn attr_value() -> impl Strategy<Value = String> {
    // Anything but the quote itself, `<` and `&` (escaped in real XML): `>`, `/`,
    // the other quote, `]]>` all may appear.
    "[a-z0-9 >/=\\]\\[!?-]{0,12}"
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9 \n>/\\]'\"=]{0,16}",
        Just("&amp;&lt;&gt;&#x263A;".to_owned()),
    ]
}

fn node() -> impl Strategy<Value = Node> {
    let leaf = prop_oneof![
        text().prop_map(Node::Text),
        "[a-z<>&/ \\]]{0,12}".prop_map(|s: String| Node::CData(s.replace("]]>", "]] >"))),
    ];
    leaf.prop_recursive(6, 48, 5, |inner| {
        (
            name(),
            prop::collection::vec(
                (name(), attr_value(), prop_oneof![Just('\''), Just('"')]),
                0..3,
            ),
            prop::collection::vec(inner, 0..5),
        )
            .prop_map(|(name, attrs, children)| Node::Element {
                name,
                attrs,
                children,
            })
    })
}

fn write(node: &Node, out: &mut String) {
    match node {
        Node::Text(t) => out.push_str(t),
        Node::CData(t) => {
            out.push_str("<![CDATA[");
            out.push_str(t);
            out.push_str("]]>");
        }
        Node::Element {
            name,
            attrs,
            children,
        } => {
            out.push('<');
            out.push_str(name);
            for (k, v, q) in attrs {
                let v = v.replace(*q, "");
                out.push_str(&format!(" {k} = {q}{v}{q}"));
            }
            if children.is_empty() {
                out.push_str("/>");
            } else {
                out.push('>');
                for c in children {
                    write(c, out);
                }
                out.push_str(&format!("</{name} >"));
            }
        }
    }
}

fn depth_of(node: &Node) -> u32 {
    match node {
        Node::Element { children, .. } => 1 + children.iter().map(depth_of).max().unwrap_or(0),
        _ => 0,
    }
}

/// A stream of top-level elements (text at the top is whitespace only).
fn stream() -> impl Strategy<Value = (String, Vec<u32>)> {
    (
        prop::collection::vec(
            (
                name().prop_filter("a header name", |n| !is_header_name(n.as_bytes())),
                prop::collection::vec(node(), 0..4),
            )
                .prop_map(|(name, children)| Node::Element {
                    name,
                    attrs: vec![("id".into(), "x>/".into(), '\'')],
                    children,
                }),
            0..6,
        ),
        any::<bool>(),
    )
        .prop_map(|(tops, restart)| {
            let mut s = HEADER.to_owned();
            let mut depths = Vec::new();
            for (i, top) in tops.iter().enumerate() {
                if restart && i == tops.len() / 2 {
                    s.push_str(HEADER);
                }
                write(top, &mut s);
                s.push_str(" \n");
                depths.push(depth_of(top));
            }
            s.push_str("</stream:stream>");
            (s, depths)
        })
}

fn cuts(len: usize) -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(0..=len.max(1), 0..8).prop_map(|mut v| {
        v.sort_unstable();
        v
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Any bytes, cut anywhere: no panic, never more than the limit held.
    #[test]
    fn any_input_never_panics(
        input in prop::collection::vec(
            prop_oneof![
                4 => any::<u8>(),
                6 => prop::sample::select(b"<>/'\"=![]?-x :a\n".to_vec()),
            ],
            0..600,
        ),
        cut in prop::collection::vec(0..600usize, 0..6),
        max_depth in 1..5u32,
        max_bytes in 1..300usize,
    ) {
        let mut cut = cut;
        cut.sort_unstable();
        let _ = run_cut(small(max_depth, max_bytes), &input, &cut);
        let mut with_header = HEADER.as_bytes().to_vec();
        with_header.extend_from_slice(&input);
        let _ = run_cut(small(max_depth, max_bytes), &with_header, &cut);
    }

    /// Well-formed streams within the limits pass through unchanged, however cut.
    #[test]
    fn well_formed_streams_pass_unchanged(
        (input, depths) in stream(),
        cut in (0..4000usize).prop_flat_map(cuts),
    ) {
        let (out, s) = run_cut(small(16, 1 << 20), input.as_bytes(), &cut).unwrap();
        prop_assert_eq!(String::from_utf8(out).unwrap(), input);
        prop_assert_eq!(s.elements(), depths.len() as u64);
    }

    /// Under tight limits: one element out for each one in, those within the limits
    /// unchanged, and the output itself passes a second scanner unchanged.
    #[test]
    fn refusals_keep_the_element_count(
        (input, depths) in stream(),
        cut in (0..4000usize).prop_flat_map(cuts),
        max_depth in 1..5u32,
    ) {
        let limits = small(max_depth, 1 << 20);
        let (out, mut s) = run_cut(limits, input.as_bytes(), &cut).unwrap();
        prop_assert_eq!(s.elements(), depths.len() as u64);
        let refused = depths.iter().filter(|&&d| d > max_depth).count();
        prop_assert_eq!(s.take_refusals().len(), refused);
        let (again, s2) = run_cut(limits, &out, &[]).unwrap();
        prop_assert_eq!(&again, &out);
        prop_assert_eq!(s2.elements(), depths.len() as u64);
    }
}
