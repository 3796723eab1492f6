use super::*;
use perch_omemo::{DeviceKeys, Identity};

fn el(xml: &str) -> Element {
    xml.parse().expect("xml")
}

#[test]
fn device_lists_of_both_versions() {
    let v03 = el(
        "<list xmlns='eu.siacs.conversations.axolotl'><device id='12345'/><device id='4223'/><device id='x'/></list>",
    );
    assert_eq!(
        parse_devicelist(&v03),
        Some((Version::V03, vec![12345, 4223]))
    );
    let v2 = el(
        "<devices xmlns='urn:xmpp:omemo:2'><device id='12345' label='phone'/><device id='0'/></devices>",
    );
    assert_eq!(parse_devicelist(&v2), Some((Version::V2, vec![12345])));
    assert_eq!(
        parse_devicelist(&el("<list xmlns='urn:xmpp:omemo:2'/>")),
        None
    );
    assert_eq!(
        String::from(&devicelist(Version::V03, &[7])),
        "<list xmlns='eu.siacs.conversations.axolotl'><device id='7'/></list>"
    );
    assert_eq!(
        String::from(&devicelist(Version::V2, &[7, 8])),
        "<devices xmlns='urn:xmpp:omemo:2'><device id='7'/><device id='8'/></devices>"
    );
    assert_eq!(devicelist_node(Version::V2), "urn:xmpp:omemo:2:devices");
    assert_eq!(
        bundle_location(Version::V03, 42),
        (
            "eu.siacs.conversations.axolotl.bundles:42".into(),
            "current".into()
        )
    );
    assert_eq!(
        bundle_location(Version::V2, 42),
        ("urn:xmpp:omemo:2:bundles".into(), "42".into())
    );
}

#[test]
fn bundles_round_trip_and_read_the_xeps_shapes() {
    let id = Identity::generate();
    for v in [Version::V03, Version::V2] {
        let b = DeviceKeys::generate(v, &id, 3).bundle(&id);
        let e = bundle(&b);
        let back = parse_bundle(v, &e).expect("parses");
        assert_eq!(back, b);
        back.verify().expect("its signature");
        assert!(
            parse_bundle(
                if v == Version::V2 {
                    Version::V03
                } else {
                    Version::V2
                },
                &e
            )
            .is_err()
        );
    }
    // The XEP's 0.3 example shape (keys are ours: the example's are placeholders).
    let b = DeviceKeys::generate(Version::V03, &id, 1).bundle(&id);
    let k = |bytes: &[u8]| B64.encode(bytes);
    let xml = format!(
        "<bundle xmlns='eu.siacs.conversations.axolotl'>\
         <signedPreKeyPublic signedPreKeyId='1'>{}</signedPreKeyPublic>\
         <signedPreKeySignature>{}</signedPreKeySignature>\
         <identityKey>{}</identityKey>\
         <prekeys><preKeyPublic preKeyId='1'>\n{}\n</preKeyPublic></prekeys></bundle>",
        k(&b.wire_signed_prekey()),
        k(&b.signature),
        k(&b.wire_identity_key()),
        k(&b.wire_prekeys()[0].1)
    );
    assert_eq!(parse_bundle(Version::V03, &el(&xml)).expect("parses"), b);
    let missing = "<bundle xmlns='urn:xmpp:omemo:2'><spk id='1'>AAAA</spk></bundle>";
    assert!(parse_bundle(Version::V2, &el(missing)).is_err());
}

#[test]
fn encrypted_messages_of_0_3() {
    let xml = "<encrypted xmlns='eu.siacs.conversations.axolotl'>\
        <header sid='27183'><key rid='31415' prekey='true'>AQID</key><key rid='12321'>BAUG</key>\
        <iv>BwgJ</iv></header><payload>CgsM</payload></encrypted>";
    let e = Encrypted::parse(&el(xml))
        .expect("an encrypted element")
        .expect("valid");
    assert_eq!(e.version, Version::V03);
    assert_eq!(e.sid, 27183);
    assert_eq!(e.keys.len(), 2);
    assert_eq!(
        e.keys[0],
        Key {
            jid: None,
            rid: 31415,
            kex: true,
            data: vec![1, 2, 3]
        }
    );
    assert!(!e.keys[1].kex);
    assert_eq!(e.iv, vec![7, 8, 9]);
    assert_eq!(e.payload, Some(vec![10, 11, 12]));
    assert_eq!(Encrypted::parse(&e.element()).unwrap().unwrap(), e);
    // A key transport (no payload), and garbage.
    let empty = "<encrypted xmlns='eu.siacs.conversations.axolotl'><header sid='1'><key rid='2'>AQ==</key><iv>AQ==</iv></header></encrypted>";
    assert_eq!(Encrypted::parse(&el(empty)).unwrap().unwrap().payload, None);
    let no_iv = "<encrypted xmlns='eu.siacs.conversations.axolotl'><header sid='1'/></encrypted>";
    assert!(Encrypted::parse(&el(no_iv)).unwrap().is_err());
    assert!(Encrypted::parse(&el("<encrypted xmlns='urn:other'/>")).is_none());
}

#[test]
fn encrypted_messages_of_2_group_keys_by_jid() {
    let xml = "<encrypted xmlns='urn:xmpp:omemo:2'><header sid='27183'>\
        <keys jid='juliet@capulet.lit'><key rid='31415' kex='true'>AQID</key></keys>\
        <keys jid='romeo@montague.lit'><key rid='1337'>BAUG</key><key rid='12321'>BwgJ</key></keys>\
        </header><payload>CgsM</payload></encrypted>";
    let e = Encrypted::parse(&el(xml)).unwrap().unwrap();
    assert_eq!(e.version, Version::V2);
    assert_eq!(e.keys.len(), 3);
    assert_eq!(e.keys[0].jid.as_deref(), Some("juliet@capulet.lit"));
    assert!(e.keys[0].kex);
    assert_eq!(e.keys[2].jid.as_deref(), Some("romeo@montague.lit"));
    assert_eq!(Encrypted::parse(&e.element()).unwrap().unwrap(), e);
    let out = String::from(&e.element());
    assert_eq!(out.matches("<keys ").count(), 2, "{out}");
}

#[test]
fn the_sce_envelope_carries_the_body_and_the_sender() {
    let env = envelope(
        "hi <there> & you",
        "romeo@montague.lit",
        "juliet@capulet.lit",
        "xyz",
    );
    let xml = String::from(&env);
    let (body, from) = parse_envelope(xml.as_bytes()).unwrap();
    assert_eq!(body.as_deref(), Some("hi <there> & you"));
    assert_eq!(from.as_deref(), Some("romeo@montague.lit"));
    let theirs = "<envelope xmlns='urn:xmpp:sce:1'><content><body xmlns='jabber:client'>Hello</body></content>\
        <rpad>C4Hg</rpad><time stamp='2004-01-25T05:05:00Z'/><to jid='juliet@capulet.lit'/>\
        <from jid='romeo@montague.lit/orchard'/></envelope>";
    let (body, from) = parse_envelope(theirs.as_bytes()).unwrap();
    assert_eq!(body.as_deref(), Some("Hello"));
    assert_eq!(from.as_deref(), Some("romeo@montague.lit/orchard"));
    assert!(parse_envelope(b"<x xmlns='y'/>").is_err());
    assert!(parse_envelope(b"not xml").is_err());
}

#[test]
fn eme_and_hints() {
    assert_eq!(
        String::from(&eme(Version::V03)),
        "<encryption xmlns='urn:xmpp:eme:0' name='OMEMO' namespace='eu.siacs.conversations.axolotl'/>"
    );
    assert!(String::from(&eme(Version::V2)).contains("urn:xmpp:omemo:2"));
    assert_eq!(
        String::from(&store_hint()),
        "<store xmlns='urn:xmpp:hints'/>"
    );
}
