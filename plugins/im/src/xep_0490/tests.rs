use super::*;

#[test]
fn displayed_message_xml() {
    let m = displayed_message("bob@x".parse().expect("jid"), "o-1");
    let xml = String::from(&Element::from(m));
    assert!(xml.contains("type='chat'"), "{xml}");
    assert!(xml.contains("to='bob@x'"), "{xml}");
    assert!(
        xml.contains("<displayed xmlns='urn:xmpp:chat-markers:0' id='o-1'/>"),
        "{xml}"
    );
    assert!(xml.contains("<store xmlns='urn:xmpp:hints'/>"), "{xml}");
    assert!(!xml.contains("<body"), "{xml}");
    assert!(!xml.contains("markable"), "{xml}");
}

#[test]
fn mds_publish_xml() {
    let p = xep_0490::Displayed {
        id: "s-9".into(),
        by: "alice@x".into(),
    };
    let xml = String::from(&mds_publish("bob@x", &p));
    assert!(
        xml.starts_with(
            "<pubsub xmlns='http://jabber.org/protocol/pubsub'>\
             <publish node='urn:xmpp:mds:displayed:0'><item id='bob@x'>\
             <displayed xmlns='urn:xmpp:mds:displayed:0'>\
             <stanza-id xmlns='urn:xmpp:sid:0' by='alice@x' id='s-9'/></displayed>\
             </item></publish><publish-options>"
        ),
        "{xml}"
    );
    for (var, value) in [
        ("pubsub#persist_items", "true"),
        ("pubsub#max_items", "max"),
        ("pubsub#send_last_published_item", "never"),
        ("pubsub#access_model", "whitelist"),
    ] {
        assert!(
            xml.contains(&format!(
                "<field var='{var}'><value>{value}</value></field>"
            )),
            "{var}: {xml}"
        );
    }
}

#[test]
fn mds_items_are_read_and_junk_skipped() {
    let items: Element = "<items xmlns='http://jabber.org/protocol/pubsub#event' \
        node='urn:xmpp:mds:displayed:0'>\
        <item id='bob@x'><displayed xmlns='urn:xmpp:mds:displayed:0'>\
        <stanza-id xmlns='urn:xmpp:sid:0' id='s-1' by='alice@x'/></displayed></item>\
        <item id='junk@x'><other xmlns='urn:example'/></item>\
        <item><displayed xmlns='urn:xmpp:mds:displayed:0'>\
        <stanza-id xmlns='urn:xmpp:sid:0' id='s-2' by='alice@x'/></displayed></item>\
        </items>"
        .parse()
        .expect("xml");
    let got = mds_items(&items);
    assert_eq!(
        got,
        vec![(
            "bob@x".to_owned(),
            xep_0490::Displayed {
                id: "s-1".into(),
                by: "alice@x".into()
            }
        )]
    );
}

#[test]
fn only_chat_messages_with_a_text_are_markable() {
    use perch_plugin_api::parsers::message::Message;
    let chat = Message::chat(Some("bob@x".parse().expect("jid")))
        .with_body(Default::default(), "hi".into());
    let mut args = OutgoingMessage::new("p".into(), chat);
    mark_markable(&mut args);
    mark_markable(&mut args);
    let xml = String::from(&Element::from(args.message.clone()));
    assert_eq!(
        xml.matches("<markable xmlns='urn:xmpp:chat-markers:0'/>")
            .count(),
        1,
        "{xml}"
    );
    let mut marker = OutgoingMessage::new(
        "p".into(),
        displayed_message("bob@x".parse().expect("jid"), "o-1"),
    );
    mark_markable(&mut marker);
    assert!(!xep_0333::is_markable(&marker.message.payloads));
}
