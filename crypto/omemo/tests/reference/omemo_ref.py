"""The reference side of perch-omemo's differential tests.

Drives python-omemo (Debian's python3-omemo, python3-oldmemo, python3-twomemo, with
x3dh, doubleratchet and xeddsa) one JSON command a line on stdin, one JSON answer a
line on stdout. Bytes travel as lowercase hex. The first line written says whether
the libraries import; the Rust test fails with the packages to install if not.

One process plays one device (one identity, one backend of one version) with at
most one session, which is all a two-party test needs.
"""

import asyncio
import base64
import json
import sys
import traceback
import xml.etree.ElementTree as ET

try:
    import xeddsa
    import doubleratchet
    import x3dh
    import oldmemo
    import oldmemo.etree
    import twomemo
    import twomemo.etree
    from doubleratchet.recommended import HashFunction
    from doubleratchet.recommended.crypto_provider_impl import CryptoProviderImpl
    from omemo.session import Initiation
    from omemo.storage import Just, Nothing, Storage
    from oldmemo import oldmemo_pb2
    from twomemo import twomemo_pb2
except ImportError as e:  # reported, never skipped
    print(json.dumps({"ready": False, "error": f"{type(e).__name__}: {e}"}), flush=True)
    sys.exit(0)

JID = "peer@example.org"
DEVICE = 4242


class MemoryStorage(Storage):
    def __init__(self):
        super().__init__(True)
        self.data = {}

    async def _load(self, key):
        return Just(self.data[key]) if key in self.data else Nothing()

    async def _store(self, key, value):
        self.data[key] = value

    async def _delete(self, key):
        self.data.pop(key, None)


def h(b):
    return b.hex()


def u(s):
    return bytes.fromhex(s)


def mod(version):
    return oldmemo.oldmemo if version == "0.3" else twomemo.twomemo


class Device:
    """One python-omemo device of one version."""

    def __init__(self):
        self.version = None
        self.backend = None
        self.session = None

    async def setup(self, version, seed, prekeys):
        self.version = version
        storage = MemoryStorage()
        await storage.store("/ikp/is_seed", True)
        await storage.store_bytes("/ikp/key", u(seed))
        if version == "0.3":
            self.backend = oldmemo.Oldmemo(storage)
        else:
            self.backend = twomemo.Twomemo(storage)
        await self.backend.generate_pre_keys(prekeys)
        bundle = await self.backend.get_bundle(JID, DEVICE)
        etree = oldmemo.etree if version == "0.3" else twomemo.etree
        elt = etree.serialize_bundle(bundle)
        return bundle_from_xml(elt)

    def bundle_impl(self, b):
        """A BundleImpl read by the reference's own parser from XML built here."""
        if self.version == "0.3":
            ns = "{eu.siacs.conversations.axolotl}"
            root = ET.Element(f"{ns}bundle")
            ET.SubElement(root, f"{ns}signedPreKeyPublic",
                          signedPreKeyId=str(b["spk_id"])).text = b64(b["spk"])
            ET.SubElement(root, f"{ns}signedPreKeySignature").text = b64(b["sig"])
            ET.SubElement(root, f"{ns}identityKey").text = b64(b["ik"])
            pks = ET.SubElement(root, f"{ns}prekeys")
            for pid, pk in b["prekeys"]:
                ET.SubElement(pks, f"{ns}preKeyPublic", preKeyId=str(pid)).text = b64(pk)
            return oldmemo.etree.parse_bundle(root, JID, DEVICE)
        ns = "{urn:xmpp:omemo:2}"
        root = ET.Element(f"{ns}bundle")
        ET.SubElement(root, f"{ns}spk", id=str(b["spk_id"])).text = b64(b["spk"])
        ET.SubElement(root, f"{ns}spks").text = b64(b["sig"])
        ET.SubElement(root, f"{ns}ik").text = b64(b["ik"])
        pks = ET.SubElement(root, f"{ns}prekeys")
        for pid, pk in b["prekeys"]:
            ET.SubElement(pks, f"{ns}pk", id=str(pid)).text = b64(pk)
        return twomemo.etree.parse_bundle(root, JID, DEVICE)

    def plain(self, km):
        m = mod(self.version)
        n = m.PlainKeyMaterialImpl.KEY_LENGTH
        return m.PlainKeyMaterialImpl(km[:n], km[n:])

    def wrap(self, ekm):
        """The bytes of a key element, wrapped in the key exchange while the
        session is ours and unanswered (as omemo's session manager does)."""
        raw = ekm.serialize()
        s = self.session
        if s.initiation is Initiation.ACTIVE and not s.confirmed:
            kex = s.key_exchange.serialize(raw)
            if self.version == "0.3":
                kex = kex[0]
            return {"bytes": h(kex), "kex": True}
        return {"bytes": h(raw), "kex": False}

    def parse_kex(self, data):
        m = mod(self.version)
        if self.version == "0.3":
            return m.KeyExchangeImpl.parse(data, False)
        return m.KeyExchangeImpl.parse(data)

    async def initiate(self, bundle, km):
        impl = self.bundle_impl(bundle)
        self.session, ekm = await self.backend.build_session_active(JID, DEVICE, impl, self.plain(km))
        return self.wrap(ekm)

    async def respond(self, data):
        m = mod(self.version)
        kex, auth = self.parse_kex(data)
        ekm = m.EncryptedKeyMaterialImpl.parse(auth, JID, DEVICE)
        self.session, pkm = await self.backend.build_session_passive(JID, DEVICE, kex, ekm)
        return {"key_material": h(pkm.key + pkm.auth_tag)}

    async def encrypt(self, km):
        ekm = await self.backend.encrypt_key_material(self.session, self.plain(km))
        return self.wrap(ekm)

    async def decrypt(self, data, is_kex):
        m = mod(self.version)
        if is_kex:
            kex, data = self.parse_kex(data)
            if not self.session.key_exchange.builds_same_session(kex):
                raise ValueError("key exchange of another session")
        ekm = m.EncryptedKeyMaterialImpl.parse(data, JID, DEVICE)
        pkm = await self.backend.decrypt_key_material(self.session, ekm)
        return {"key_material": h(pkm.key + pkm.auth_tag)}


def b64(hexstr):
    return base64.b64encode(u(hexstr)).decode("ascii")


def bundle_from_xml(elt):
    """Wire bytes (hex) of a bundle element, 0.3 or 2."""
    def text(tag):
        return base64.b64decode(next(e for e in elt.iter() if e.tag.endswith("}" + tag)).text)
    if elt.tag.startswith("{eu.siacs"):
        spk_elt = next(e for e in elt.iter() if e.tag.endswith("}signedPreKeyPublic"))
        pks = [e for e in elt.iter() if e.tag.endswith("}preKeyPublic")]
        return {
            "ik": h(text("identityKey")), "spk_id": int(spk_elt.get("signedPreKeyId")),
            "spk": h(text("signedPreKeyPublic")), "sig": h(text("signedPreKeySignature")),
            "prekeys": [[int(e.get("preKeyId")), h(base64.b64decode(e.text))] for e in pks],
        }
    spk_elt = next(e for e in elt.iter() if e.tag.endswith("}spk"))
    pks = [e for e in elt.iter() if e.tag.endswith("}pk")]
    return {
        "ik": h(text("ik")), "spk_id": int(spk_elt.get("id")),
        "spk": h(text("spk")), "sig": h(text("spks")),
        "prekeys": [[int(e.get("id")), h(base64.b64decode(e.text))] for e in pks],
    }


async def hkdf(length, salt, info, ikm):
    return await CryptoProviderImpl.hkdf_derive(HashFunction.SHA_256, length, salt, info, ikm)


async def kdf(cmd):
    """Every derivation of one version for the given inputs."""
    m = mod(cmd["version"])
    root = await m.RootChainKDFImpl.derive(u(cmd["root_key"]), u(cmd["dh"]), 64)
    chain = await m.MessageChainKDFImpl.derive(u(cmd["chain_key"]), m.DoubleRatchetImpl.MESSAGE_CHAIN_CONSTANT, 64)
    msg = await hkdf(80, b"\0" * 32, m.AEADImpl._get_info(), u(cmd["message_key"]))
    x3 = await hkdf(32, b"\0" * 32, m.StateImpl.INFO, b"\xff" * 32 + b"".join(u(d) for d in cmd["dhs"]))
    return {"root": h(root), "chain": h(chain), "message_keys": h(msg), "x3dh": h(x3)}


async def seal(cmd):
    """The reference's AEAD output for a message key, associated data and header."""
    version = cmd["version"]
    m = mod(version)
    hd = cmd["header"]
    header = doubleratchet.Header(u(hd["ratchet_pub"]), hd["pn"], hd["n"])
    ad = m.DoubleRatchetImpl._build_associated_data(u(cmd["ad"]), header)
    out = await m.AEADImpl.encrypt(u(cmd["plaintext"]), u(cmd["message_key"]), ad)
    back = await m.AEADImpl.decrypt(out, u(cmd["message_key"]), ad)
    assert back == u(cmd["plaintext"])
    return {"bytes": h(out)}


async def open_(cmd):
    m = mod(cmd["version"])
    hd = cmd["header"]
    header = doubleratchet.Header(u(hd["ratchet_pub"]), hd["pn"], hd["n"])
    ad = m.DoubleRatchetImpl._build_associated_data(u(cmd["ad"]), header)
    return {"plaintext": h(await m.AEADImpl.decrypt(u(cmd["bytes"]), u(cmd["message_key"]), ad))}


async def ratchet(cmd):
    """The reference's Double Ratchet with its ratchet keys given (``privs``, in the
    order it asks for new ones): the initiator's messages, or the responder's
    decryption of the first message followed by its replies."""
    m = mod(cmd["version"])
    from doubleratchet.recommended import diffie_hellman_ratchet_curve25519 as dhr
    cls = dhr.DiffieHellmanRatchet
    privs = [u(p) for p in cmd["privs"]]
    original = cls.__dict__["_generate_priv"]
    cls._generate_priv = staticmethod(lambda: privs.pop(0))
    try:
        args = (cls, m.RootChainKDFImpl, m.MessageChainKDFImpl, m.DoubleRatchetImpl.MESSAGE_CHAIN_CONSTANT,
                1000, 1000, m.AEADImpl, u(cmd["shared_secret"]))
        ad = u(cmd["ad"])
        pts = [u(p) for p in cmd["plaintexts"]]
        if cmd["role"] == "active":
            dr, first = await m.DoubleRatchetImpl.encrypt_initial_message(*args, u(cmd["other_pub"]), pts[0], ad)
            out = [first.ciphertext]
        else:
            msg = m.EncryptedKeyMaterialImpl.parse(u(cmd["first"]), JID, DEVICE).encrypted_message
            dr, plain = await m.DoubleRatchetImpl.decrypt_initial_message(*args, u(cmd["own_priv"]), msg, ad)
            out = [plain]
        for p in pts[1:]:
            out.append((await dr.encrypt_message(p, ad)).ciphertext)
    finally:
        cls._generate_priv = original
    return {"out": [h(x) for x in out]}


def proto(cmd):
    """Encode with the reference's protobuf classes, and parse given bytes."""
    f = cmd["fields"]
    version = cmd["version"]
    pb = oldmemo_pb2 if version == "0.3" else twomemo_pb2
    if cmd["kind"] == "message":
        msg = pb.OMEMOMessage(n=f["n"], pn=f["pn"], dh_pub=u(f["dh_pub"]))
        if "ciphertext" in f:
            msg.ciphertext = u(f["ciphertext"])
    else:
        inner = u(f["message"])
        if version == "2":
            inner = twomemo_pb2.OMEMOAuthenticatedMessage.FromString(inner)
        msg = pb.OMEMOKeyExchange(pk_id=f["pk_id"], spk_id=f["spk_id"], ik=u(f["ik"]),
                                  ek=u(f["ek"]), message=inner)
    out = {"bytes": h(msg.SerializeToString())}
    if "parse" in cmd:
        parsed = type(msg).FromString(u(cmd["parse"]))
        out["reencoded"] = h(parsed.SerializeToString())
    return out


def xeddsa_cmd(cmd):
    priv = u(cmd["priv"])
    msg = u(cmd["msg"])
    curve = xeddsa.priv_to_curve25519_pub(priv)
    ed = xeddsa.priv_to_ed25519_pub(priv)
    verified = []
    for v in cmd.get("verify", []):
        sig = bytearray(u(v["sig"]))
        if v["kind"] == "curve":
            bit = bool(sig[63] >> 7)
            sig[63] &= 0x7F
            key = xeddsa.curve25519_pub_to_ed25519_pub(u(v["key"]), bit)
        else:
            key = u(v["key"])
        verified.append(xeddsa.ed25519_verify(bytes(sig), key, msg))
    return {
        "seed_priv": h(xeddsa.seed_to_priv(priv)),
        "seed_ed": h(xeddsa.seed_to_ed25519_pub(priv)),
        "curve": h(curve),
        "ed": h(ed),
        "ed_to_curve": h(xeddsa.ed25519_pub_to_curve25519_pub(ed)),
        "curve_to_ed0": h(xeddsa.curve25519_pub_to_ed25519_pub(curve, False)),
        "sig_xeddsa": h(xeddsa.ed25519_priv_sign(xeddsa.priv_force_sign(priv, False), msg)),
        "sig_ed": h(xeddsa.ed25519_priv_sign(priv, msg)),
        "verified": verified,
    }


async def payload(cmd):
    version = cmd["version"]
    m = mod(version)
    backend = (oldmemo.Oldmemo if version == "0.3" else twomemo.Twomemo)(MemoryStorage())
    n = m.PlainKeyMaterialImpl.KEY_LENGTH
    if cmd["op"] == "payload_encrypt":
        content, pkm = await backend.encrypt_plaintext(u(cmd["plaintext"]))
        out = {"ciphertext": h(content.ciphertext), "key_material": h(pkm.key + pkm.auth_tag)}
        if version == "0.3":
            out["iv"] = h(content.initialization_vector)
        return out
    km = u(cmd["key_material"])
    pkm = m.PlainKeyMaterialImpl(km[:n], km[n:])
    if version == "0.3":
        content = m.ContentImpl(u(cmd["ciphertext"]), u(cmd["iv"]))
    else:
        content = m.ContentImpl(u(cmd["ciphertext"]))
    return {"plaintext": h(await backend.decrypt_plaintext(content, pkm))}


async def handle(device, cmd):
    op = cmd["op"]
    if op == "setup":
        return {"bundle": await device.setup(cmd["version"], cmd["seed"], cmd.get("prekeys", 10))}
    if op == "initiate":
        return await device.initiate(cmd["bundle"], u(cmd["key_material"]))
    if op == "respond":
        return await device.respond(u(cmd["bytes"]))
    if op == "encrypt":
        return await device.encrypt(u(cmd["key_material"]))
    if op == "decrypt":
        return await device.decrypt(u(cmd["bytes"]), cmd["kex"])
    if op == "kdf":
        return await kdf(cmd)
    if op == "seal":
        return await seal(cmd)
    if op == "open":
        return await open_(cmd)
    if op == "ratchet":
        return await ratchet(cmd)
    if op == "proto":
        return proto(cmd)
    if op == "xeddsa":
        return xeddsa_cmd(cmd)
    if op in ("payload_encrypt", "payload_decrypt"):
        return await payload(cmd)
    raise ValueError(f"unknown op {op}")


def main():
    print(json.dumps({"ready": True}), flush=True)
    loop = asyncio.new_event_loop()
    device = Device()
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            answer = loop.run_until_complete(handle(device, json.loads(line)))
            answer["ok"] = True
        except Exception as e:  # the test asserts on it
            answer = {"ok": False, "error": f"{type(e).__name__}: {e}",
                      "trace": traceback.format_exc()}
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()
