//! Differential tests of perch-omemo against the reference implementation,
//! python-omemo (Debian: python3-omemo, python3-oldmemo, python3-twomemo), driven
//! through `tests/reference/omemo_ref.py` with Debian's system python3: the same
//! keys and inputs must give the same KDF outputs, message keys and bytes, and
//! whole sessions must work both ways in both versions. Also the property tests of
//! the protobuf parsers. A missing python3 or library fails the tests (never skips),
//! naming the packages to install.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use perch_omemo::message::{self, seal};
use perch_omemo::proto::{Authenticated, KeyExchange, RatchetMessage};
use perch_omemo::ratchet::{Header, Ratchet};
use perch_omemo::{DeviceKeys, Identity, Session, Version, kdf, payload, xeddsa};
use proptest::prelude::*;
use serde_json::{Value, json};

const PYTHON: &str = "/usr/bin/python3";
const INSTALL: &str = "the OMEMO reference implementation is needed: \
    apt-get install python3-omemo python3-oldmemo python3-twomemo";

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &Value) -> Vec<u8> {
    let s = s
        .as_str()
        .unwrap_or_else(|| panic!("hex string expected, got {s}"));
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn rand_bytes(n: usize) -> Vec<u8> {
    (0..n.div_ceil(32))
        .flat_map(|_| xeddsa::random_32())
        .take(n)
        .collect()
}

fn ver(v: Version) -> &'static str {
    match v {
        Version::V03 => "0.3",
        Version::V2 => "2",
    }
}

/// One python-omemo process: one device.
struct Reference {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Reference {
    fn start() -> Self {
        assert!(
            std::path::Path::new(PYTHON).exists(),
            "{PYTHON} is missing; {INSTALL}"
        );
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/reference/omemo_ref.py");
        let mut child = Command::new(PYTHON)
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("running {PYTHON}: {e}; {INSTALL}"));
        let stdin = child.stdin.take().expect("stdin");
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut r = Reference {
            child,
            stdin,
            stdout,
        };
        let hello = r.read();
        assert!(
            hello["ready"] == true,
            "python-omemo does not import ({}); {INSTALL}",
            hello["error"]
        );
        r
    }

    fn read(&mut self) -> Value {
        let mut line = String::new();
        self.stdout
            .read_line(&mut line)
            .expect("reading the reference");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("reference answered {line:?}: {e}"))
    }

    fn try_call(&mut self, cmd: Value) -> Value {
        writeln!(self.stdin, "{cmd}").expect("writing to the reference");
        self.stdin.flush().expect("flush");
        self.read()
    }

    fn call(&mut self, cmd: Value) -> Value {
        let answer = self.try_call(cmd.clone());
        assert!(
            answer["ok"] == true,
            "the reference failed {cmd}: {}\n{}",
            answer["error"],
            answer["trace"].as_str().unwrap_or("")
        );
        answer
    }
}

impl Drop for Reference {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn xeddsa_keys_and_signatures_agree_both_ways() {
    let mut py = Reference::start();
    for _ in 0..8 {
        // A clamped private key, as every stored key is (the reference's
        // `ed25519_priv_sign` does not clamp, its key derivation does).
        let k = xeddsa::seed_to_priv(&xeddsa::random_32());
        let msg = rand_bytes(33);
        let xed = xeddsa::xeddsa_sign(&k, &msg, &xeddsa::random_nonce());
        let ed_sig = xeddsa::sign_ed(&k, &msg, &xeddsa::random_nonce());
        let (curve, ed) = (xeddsa::priv_to_curve_pub(&k), xeddsa::priv_to_ed_pub(&k));
        let a = py.call(
            json!({"op": "xeddsa", "priv": hex(&k), "msg": hex(&msg), "verify": [
                {"kind": "curve", "key": hex(&curve), "sig": hex(&xed)},
                {"kind": "ed", "key": hex(&ed), "sig": hex(&ed_sig)},
                {"kind": "curve", "key": hex(&curve), "sig": hex(&ed_sig)},
            ]}),
        );
        assert_eq!(a["curve"], hex(&curve));
        assert_eq!(a["ed"], hex(&ed));
        assert_eq!(a["seed_priv"], hex(&xeddsa::seed_to_priv(&k)));
        assert_eq!(
            a["seed_ed"],
            hex(&xeddsa::priv_to_ed_pub(&xeddsa::seed_to_priv(&k)))
        );
        assert_eq!(a["ed_to_curve"], hex(&xeddsa::ed_to_curve(&ed).unwrap()));
        assert_eq!(
            a["curve_to_ed0"],
            hex(&xeddsa::curve_to_ed(&curve, false).unwrap())
        );
        // Ours verify there; an Ed25519 signature only verifies with the curve key
        // when its sign bit travels in the signature, and sign bit 0 was implied.
        let verified = a["verified"].as_array().unwrap();
        assert_eq!(verified[0], true);
        assert_eq!(verified[1], true);
        assert_eq!(verified[2], ed[31] & 0x80 == 0);
        // Theirs verify here.
        let theirs_xed: [u8; 64] = unhex(&a["sig_xeddsa"]).try_into().unwrap();
        let theirs_ed: [u8; 64] = unhex(&a["sig_ed"]).try_into().unwrap();
        assert!(xeddsa::verify_curve(&curve, &msg, &theirs_xed));
        assert!(xeddsa::verify_ed(&ed, &msg, &theirs_ed));
        let mut carried = theirs_ed;
        carried[63] |= ed[31] & 0x80;
        assert!(
            xeddsa::verify_curve(&curve, &msg, &carried),
            "oldmemo's form"
        );
        assert!(!xeddsa::verify_ed(&ed, &msg[1..], &theirs_ed));
    }
}

#[test]
fn kdf_chains_and_message_keys_are_the_references() {
    let mut py = Reference::start();
    for version in [Version::V03, Version::V2] {
        for _ in 0..4 {
            let (root_key, dh, ck, mk) = (
                xeddsa::random_32(),
                xeddsa::random_32(),
                xeddsa::random_32(),
                xeddsa::random_32(),
            );
            let dhs: Vec<[u8; 32]> = (0..4).map(|_| xeddsa::random_32()).collect();
            let a = py.call(json!({"op": "kdf", "version": ver(version),
                "root_key": hex(&root_key), "dh": hex(&dh), "chain_key": hex(&ck),
                "message_key": hex(&mk), "dhs": dhs.iter().map(|d| hex(d)).collect::<Vec<_>>()}));
            let (r1, r2) = kdf::root_step(version, &root_key, &dh);
            assert_eq!(a["root"], hex(&[r1, r2].concat()), "{version:?} root chain");
            let (c1, c2) = kdf::chain_step(&ck);
            assert_eq!(
                a["chain"],
                hex(&[c1, c2].concat()),
                "{version:?} message chain"
            );
            let (e, m, iv) = kdf::message_keys(version.message_key_info(), &mk);
            assert_eq!(
                a["message_keys"],
                hex(&[&e[..], &m[..], &iv[..]].concat()),
                "{version:?} message keys"
            );
            assert_eq!(
                a["x3dh"],
                hex(&kdf::x3dh_secret(version, &dhs)),
                "{version:?} X3DH"
            );
        }
    }
}

#[test]
fn sealed_messages_are_byte_for_byte_the_references() {
    let mut py = Reference::start();
    for version in [Version::V03, Version::V2] {
        for (n, pn, len) in [(0u32, 0u32, 32usize), (7, 300, 48), (70_000, 1, 1)] {
            let header = Header {
                ratchet_pub: xeddsa::random_32(),
                pn,
                n,
            };
            let mk = xeddsa::random_32();
            let ad = rand_bytes(2 * version.identity_encoding_len());
            let plaintext = rand_bytes(len);
            let ours = seal(version, &mk, &ad, &header, &plaintext);
            let header_json = json!({"ratchet_pub": hex(&header.ratchet_pub), "n": n, "pn": pn});
            let a = py.call(
                json!({"op": "seal", "version": ver(version), "message_key": hex(&mk),
                "ad": hex(&ad), "header": header_json, "plaintext": hex(&plaintext)}),
            );
            assert_eq!(a["bytes"], hex(&ours), "{version:?} sealed bytes");
            assert_eq!(message::header(version, &ours).unwrap(), header);
            let a = py.call(
                json!({"op": "open", "version": ver(version), "message_key": hex(&mk),
                "ad": hex(&ad), "header": header_json, "bytes": hex(&ours)}),
            );
            assert_eq!(a["plaintext"], hex(&plaintext));
        }
    }
}

/// With the same shared secret and ratchet keys, both ratchets produce the same
/// chains: the initiator's messages and the responder's replies are byte-identical.
#[test]
fn ratchets_with_the_same_keys_give_the_same_messages() {
    let mut py = Reference::start();
    for version in [Version::V03, Version::V2] {
        let (ss, spk, a0, b1) = (
            xeddsa::random_32(),
            xeddsa::random_32(),
            xeddsa::random_32(),
            xeddsa::random_32(),
        );
        let ad = rand_bytes(2 * version.identity_encoding_len());
        let plaintexts: Vec<Vec<u8>> = (0..4).map(|i| rand_bytes(16 + i)).collect();
        let hexes = |v: &[Vec<u8>]| v.iter().map(|p| hex(p)).collect::<Vec<_>>();

        let mut alice =
            Ratchet::active_with(version, ss, xeddsa::priv_to_curve_pub(&spk), a0).unwrap();
        let ours: Vec<Vec<u8>> = plaintexts
            .iter()
            .map(|p| {
                let (mk, header) = alice.next_encryption_key();
                seal(version, &mk, &ad, &header, p)
            })
            .collect();
        let a = py.call(
            json!({"op": "ratchet", "version": ver(version), "role": "active",
            "privs": [hex(&a0)], "shared_secret": hex(&ss),
            "other_pub": hex(&xeddsa::priv_to_curve_pub(&spk)), "ad": hex(&ad),
            "plaintexts": hexes(&plaintexts)}),
        );
        assert_eq!(
            a["out"],
            json!(hexes(&ours)),
            "{version:?} initiator's messages"
        );

        let header = message::header(version, &ours[0]).unwrap();
        let mut bob = Ratchet::passive_with(version, ss, spk, header.ratchet_pub, b1).unwrap();
        let first = bob
            .decrypt(&header, |mk| message::open(version, mk, &ad, &ours[0]))
            .unwrap();
        let mut replies = vec![first];
        for p in &plaintexts[1..] {
            let (mk, header) = bob.next_encryption_key();
            replies.push(seal(version, &mk, &ad, &header, p));
        }
        let a = py.call(
            json!({"op": "ratchet", "version": ver(version), "role": "passive",
            "privs": [hex(&b1)], "shared_secret": hex(&ss), "own_priv": hex(&spk),
            "first": hex(&ours[0]), "ad": hex(&ad), "plaintexts": hexes(&plaintexts)}),
        );
        assert_eq!(
            a["out"],
            json!(hexes(&replies)),
            "{version:?} responder's replies"
        );
    }
}

#[test]
fn protobuf_encodings_are_the_references() {
    let mut py = Reference::start();
    for version in [Version::V03, Version::V2] {
        let m = RatchetMessage {
            dh_pub: rand_bytes(33),
            n: 1_000_000,
            pn: 0,
            ciphertext: Some(rand_bytes(48)),
        };
        let a = py.call(
            json!({"op": "proto", "version": ver(version), "kind": "message",
            "fields": {"dh_pub": hex(&m.dh_pub), "n": m.n, "pn": m.pn,
                       "ciphertext": hex(m.ciphertext.as_ref().unwrap())},
            "parse": hex(&m.encode(version))}),
        );
        assert_eq!(a["bytes"], hex(&m.encode(version)), "{version:?} message");
        assert_eq!(a["reencoded"], a["bytes"]);
        let inner = match version {
            Version::V03 => rand_bytes(60),
            Version::V2 => Authenticated {
                mac: rand_bytes(16),
                message: rand_bytes(40),
            }
            .encode(),
        };
        let k = KeyExchange {
            pk_id: 17,
            spk_id: 3,
            ik: rand_bytes(32),
            ek: rand_bytes(32),
            message: inner,
            registration_id: None,
        };
        let a = py.call(
            json!({"op": "proto", "version": ver(version), "kind": "kex",
            "fields": {"pk_id": k.pk_id, "spk_id": k.spk_id, "ik": hex(&k.ik), "ek": hex(&k.ek),
                       "message": hex(&k.message)},
            "parse": hex(&k.encode(version))}),
        );
        assert_eq!(
            a["bytes"],
            hex(&k.encode(version)),
            "{version:?} key exchange"
        );
        assert_eq!(a["reencoded"], a["bytes"]);
    }
}

#[test]
fn payloads_decrypt_both_ways() {
    let mut py = Reference::start();
    let text = b"<envelope xmlns='urn:xmpp:sce:1'><content><body>hi</body></content></envelope>";
    // 0.3: ours there
    let p = payload::encrypt_v03(text);
    let a = py.call(json!({"op": "payload_decrypt", "version": "0.3",
        "key_material": hex(&p.key_material), "iv": hex(&p.iv), "ciphertext": hex(&p.ciphertext)}));
    assert_eq!(a["plaintext"], hex(text));
    // 0.3: theirs here
    let a = py.call(json!({"op": "payload_encrypt", "version": "0.3", "plaintext": hex(text)}));
    assert_eq!(unhex(&a["key_material"]).len(), 32);
    assert_eq!(
        payload::decrypt_v03(
            &unhex(&a["key_material"]),
            &unhex(&a["iv"]),
            &unhex(&a["ciphertext"])
        )
        .unwrap(),
        text
    );
    // 2: ours there, theirs here
    let p = payload::encrypt_v2(text);
    let a = py.call(json!({"op": "payload_decrypt", "version": "2",
        "key_material": hex(&p.key_material), "ciphertext": hex(&p.ciphertext)}));
    assert_eq!(a["plaintext"], hex(text));
    let a = py.call(json!({"op": "payload_encrypt", "version": "2", "plaintext": hex(text)}));
    assert_eq!(unhex(&a["key_material"]).len(), 48);
    assert_eq!(
        payload::decrypt_v2(&unhex(&a["key_material"]), &unhex(&a["ciphertext"])).unwrap(),
        text
    );
}

fn key_material(version: Version) -> Vec<u8> {
    rand_bytes(match version {
        Version::V03 => 32,
        Version::V2 => 48,
    })
}

fn wire_bundle(b: &perch_omemo::Bundle) -> Value {
    json!({"ik": hex(&b.wire_identity_key()), "spk_id": b.signed_prekey_id,
        "spk": hex(&b.wire_signed_prekey()), "sig": hex(&b.signature),
        "prekeys": b.wire_prekeys().iter().map(|(id, k)| json!([id, hex(k)])).collect::<Vec<_>>()})
}

fn read_bundle(version: Version, v: &Value) -> perch_omemo::Bundle {
    let prekeys: Vec<(u32, Vec<u8>)> = v["prekeys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p[0].as_u64().unwrap() as u32, unhex(&p[1])))
        .collect();
    perch_omemo::Bundle::from_wire(
        version,
        &unhex(&v["ik"]),
        v["spk_id"].as_u64().unwrap() as u32,
        &unhex(&v["spk"]),
        &unhex(&v["sig"]),
        &prekeys,
    )
    .expect("the reference's bundle reads")
}

/// Rust sends `count` messages; Python receives them in `order` (indices), some
/// maybe never. Checks each key material.
fn rust_to_python(
    py: &mut Reference,
    me: &Identity,
    s: &mut Session,
    version: Version,
    count: usize,
    order: &[usize],
) {
    let sent: Vec<_> = (0..count)
        .map(|_| {
            let km = key_material(version);
            (s.encrypt(me, &km), km)
        })
        .collect();
    for &i in order {
        let (e, km) = &sent[i];
        let a = py.call(json!({"op": "decrypt", "bytes": hex(&e.bytes), "kex": e.key_exchange}));
        assert_eq!(a["key_material"], hex(km), "{version:?} message {i}");
    }
}

fn python_to_rust(
    py: &mut Reference,
    s: &mut Session,
    version: Version,
    count: usize,
    order: &[usize],
) {
    let sent: Vec<_> = (0..count)
        .map(|_| {
            let km = key_material(version);
            let a = py.call(json!({"op": "encrypt", "key_material": hex(&km)}));
            (unhex(&a["bytes"]), a["kex"] == true, km)
        })
        .collect();
    for &i in order {
        let (bytes, kex, km) = &sent[i];
        assert_eq!(
            &s.decrypt(bytes, *kex).unwrap(),
            km,
            "{version:?} message {i}"
        );
    }
}

/// A seed whose Ed25519 key has the given sign bit: 0.3 bundles carry it in the
/// signature, so both must be tried.
fn seed_with_sign(bit: bool) -> [u8; 32] {
    loop {
        let seed = xeddsa::random_32();
        let ed = xeddsa::priv_to_ed_pub(&xeddsa::seed_to_priv(&seed));
        if (ed[31] & 0x80 != 0) == bit {
            return seed;
        }
    }
}

#[test]
fn rust_opens_sessions_that_python_reads() {
    for (version, bit) in [
        (Version::V03, false),
        (Version::V03, true),
        (Version::V2, true),
    ] {
        let mut py = Reference::start();
        let a = py.call(json!({"op": "setup", "version": ver(version),
            "seed": hex(&seed_with_sign(bit)), "prekeys": 5}));
        let bundle = read_bundle(version, &a["bundle"]);
        bundle
            .verify()
            .expect("the reference's signed prekey verifies");
        let me = Identity::generate();
        let km = key_material(version);
        let (mut s, first) = Session::initiate(&me, &bundle, &km).unwrap();
        let a = py.call(json!({"op": "respond", "bytes": hex(&first.bytes)}));
        assert_eq!(a["key_material"], hex(&km));
        // More before any answer: still key exchanges, one skipped, out of order.
        rust_to_python(&mut py, &me, &mut s, version, 3, &[2, 0]);
        python_to_rust(&mut py, &mut s, version, 1, &[0]);
        assert!(!s.awaiting_answer());
        rust_to_python(&mut py, &me, &mut s, version, 6, &[3, 0, 5, 1, 2]);
        let mut s = Session::from_json(&s.to_json()).unwrap();
        python_to_rust(&mut py, &mut s, version, 5, &[4, 2, 0, 3]);
        for round in 0..4 {
            rust_to_python(&mut py, &me, &mut s, version, round + 1, &[round]);
            python_to_rust(&mut py, &mut s, version, 2, &[1, 0]);
        }
    }
}

#[test]
fn python_opens_sessions_that_rust_reads() {
    for version in [Version::V03, Version::V2] {
        let mut py = Reference::start();
        py.call(json!({"op": "setup", "version": ver(version),
            "seed": hex(&xeddsa::random_32()), "prekeys": 1}));
        let me = Identity::generate();
        let mut keys = DeviceKeys::generate(version, &me, 5);
        let km = key_material(version);
        let a = py.call(
            json!({"op": "initiate", "bundle": wire_bundle(&keys.bundle(&me)),
            "key_material": hex(&km)}),
        );
        assert_eq!(a["kex"], true);
        let r = Session::respond(&me, &keys, &unhex(&a["bytes"])).unwrap();
        assert_eq!(r.key_material, km);
        assert!(keys.remove_prekey(r.prekey_id));
        let mut s = r.session;
        // Python repeats the key exchange until we answer; skipped and reordered.
        python_to_rust(&mut py, &mut s, version, 4, &[3, 1, 0]);
        rust_to_python(&mut py, &me, &mut s, version, 2, &[1, 0]);
        python_to_rust(&mut py, &mut s, version, 5, &[0, 4, 2, 1, 3]);
        rust_to_python(&mut py, &me, &mut s, version, 4, &[3, 2]);
        let mut s = Session::from_json(&s.to_json()).unwrap();
        for round in 0..4 {
            python_to_rust(&mut py, &mut s, version, round + 1, &[round]);
            rust_to_python(&mut py, &me, &mut s, version, 2, &[0, 1]);
        }
        assert!(
            Session::respond(&me, &keys, &unhex(&a["bytes"])).is_err(),
            "a used prekey is gone"
        );
    }
}

#[test]
fn python_refuses_a_tampered_message() {
    let mut py = Reference::start();
    py.call(
        json!({"op": "setup", "version": "2", "seed": hex(&xeddsa::random_32()), "prekeys": 2}),
    );
    let me = Identity::generate();
    let keys = DeviceKeys::generate(Version::V2, &me, 2);
    let a = py.call(
        json!({"op": "initiate", "bundle": wire_bundle(&keys.bundle(&me)),
        "key_material": hex(&key_material(Version::V2))}),
    );
    let mut s = Session::respond(&me, &keys, &unhex(&a["bytes"]))
        .unwrap()
        .session;
    let mut e = s.encrypt(&me, &key_material(Version::V2));
    let last = e.bytes.len() - 1;
    e.bytes[last] ^= 1;
    let a = py.try_call(json!({"op": "decrypt", "bytes": hex(&e.bytes), "kex": false}));
    assert_eq!(a["ok"], false, "a flipped bit must not decrypt");
}

proptest! {
    #[test]
    fn parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        for version in [Version::V03, Version::V2] {
            let _ = RatchetMessage::decode(version, &bytes);
            let _ = KeyExchange::decode(version, &bytes);
            let _ = message::header(version, &bytes);
        }
        let _ = Authenticated::decode(&bytes);
    }

    #[test]
    fn messages_round_trip(
        dh in proptest::collection::vec(any::<u8>(), 0..40),
        n in any::<u32>(), pn in any::<u32>(),
        ct in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..300)),
    ) {
        for version in [Version::V03, Version::V2] {
            let m = RatchetMessage { dh_pub: dh.clone(), n, pn, ciphertext: ct.clone() };
            prop_assert_eq!(RatchetMessage::decode(version, &m.encode(version)).unwrap(), m);
        }
    }

    #[test]
    fn key_exchanges_round_trip(
        pk_id in any::<u32>(), spk_id in any::<u32>(),
        ik in proptest::collection::vec(any::<u8>(), 0..40),
        ek in proptest::collection::vec(any::<u8>(), 0..40),
        mac in proptest::collection::vec(any::<u8>(), 0..20),
        body in proptest::collection::vec(any::<u8>(), 0..100),
        reg in proptest::option::of(any::<u32>()),
    ) {
        let message = Authenticated { mac, message: body }.encode();
        prop_assert_eq!(&Authenticated::decode(&message).unwrap().encode(), &message);
        for version in [Version::V03, Version::V2] {
            let k = KeyExchange {
                pk_id, spk_id, ik: ik.clone(), ek: ek.clone(), message: message.clone(),
                registration_id: if version == Version::V03 { reg } else { None },
            };
            prop_assert_eq!(KeyExchange::decode(version, &k.encode(version)).unwrap(), k);
        }
    }

    #[test]
    fn sessions_refuse_garbage_without_panicking(
        bytes in proptest::collection::vec(any::<u8>(), 0..200), kex in any::<bool>(),
    ) {
        for version in [Version::V03, Version::V2] {
            let me = Identity::generate();
            let keys = DeviceKeys::generate(version, &me, 1);
            prop_assert!(Session::respond(&me, &keys, &bytes).is_err());
            let bob = Identity::generate();
            let bundle = DeviceKeys::generate(version, &bob, 1).bundle(&bob);
            let (mut s, _) = Session::initiate(&me, &bundle, b"k").unwrap();
            prop_assert!(s.decrypt(&bytes, kex).is_err());
        }
    }
}
