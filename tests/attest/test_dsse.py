"""Our DSSE envelopes, checked by a third-party implementation (securesystemslib)."""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path

import pytest
from securesystemslib.dsse import Envelope
from securesystemslib.exceptions import VerificationError as SslibVerificationError
from securesystemslib.signer import SSlibKey

from clearance.attest.dsse import open_envelope, pae, sign_envelope
from clearance.attest.keys import FileSigner
from clearance.core.ledger import note_key_id, note_verifier_key
from clearance.errors import VerificationError


@pytest.fixture
def signer(tmp_path: Path) -> FileSigner:
    return FileSigner.create(tmp_path / "key.pem")


def sslib_key(signer: FileSigner) -> SSlibKey:
    return SSlibKey.from_crypto(signer.public_key, keyid=signer.keyid)


class TestEnvelope:
    def test_pae_matches_the_dsse_spec_example(self) -> None:
        assert pae("http://example.com/HelloWorld", b"hello world") == (
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
        )

    def test_securesystemslib_verifies_our_envelope(self, signer: FileSigner) -> None:
        payload = json.dumps({"_type": "https://in-toto.io/Statement/v1"}).encode()
        envelope = sign_envelope(payload, signer)
        verified = Envelope.from_dict(copy.deepcopy(envelope)).verify([sslib_key(signer)], 1)
        assert signer.keyid in verified
        assert open_envelope(envelope, signer.public_key, signer.keyid, where="e") == json.loads(
            payload
        )

    def test_a_changed_payload_fails_both_verifiers(self, signer: FileSigner) -> None:
        envelope = sign_envelope(b'{"result": "FAILED"}', signer)
        envelope["payload"] = base64.b64encode(b'{"result": "PASSED"}').decode()
        with pytest.raises(SslibVerificationError):
            Envelope.from_dict(copy.deepcopy(envelope)).verify([sslib_key(signer)], 1)
        with pytest.raises(VerificationError, match="signature does not verify"):
            open_envelope(envelope, signer.public_key, signer.keyid, where="e")

    def test_another_key_is_not_accepted(self, signer: FileSigner, tmp_path: Path) -> None:
        other = FileSigner.create(tmp_path / "other.pem")
        envelope = sign_envelope(b"{}", other)
        with pytest.raises(VerificationError, match=f"no signature by key {signer.keyid}"):
            open_envelope(envelope, signer.public_key, signer.keyid, where="e")

    def test_keyid_is_sha256_of_the_spki_der(self, signer: FileSigner) -> None:
        import hashlib

        from cryptography.hazmat.primitives import serialization

        der = signer.public_key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        assert signer.keyid == "sha256:" + hashlib.sha256(der).hexdigest()


class TestSignedNote:
    """Checkpoint key ids follow c2sp.org/signed-note, as Go's x/mod/sumdb/note does."""

    GO_VERIFIER_KEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"

    def test_key_id_and_verifier_key_match_the_reference_vector(self) -> None:
        name, _, encoded = self.GO_VERIFIER_KEY.split("+")
        raw = base64.b64decode(encoded)[1:]
        assert note_key_id(name, raw).hex() == "c74f20a3"
        assert note_verifier_key(name, raw) == self.GO_VERIFIER_KEY
