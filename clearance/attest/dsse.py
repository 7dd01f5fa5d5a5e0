"""DSSE envelopes (github.com/secure-systems-lab/dsse, protocol v1) signed by a :class:`Signer`.

The signature covers PAE(payloadType, payload) =
``"DSSEv1" SP len(type) SP type SP len(body) SP body``; base64 is standard and padded, so
securesystemslib and other third-party verifiers read our envelopes as they are.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from clearance.attest.keys import Signer, verify
from clearance.errors import VerificationError

IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"


def pae(payload_type: str, payload: bytes) -> bytes:
    kind = payload_type.encode()
    return b"DSSEv1 %d %b %d %b" % (len(kind), kind, len(payload), payload)


def sign_envelope(
    payload: bytes, signer: Signer, payload_type: str = IN_TOTO_PAYLOAD_TYPE
) -> dict[str, Any]:
    signature = signer.sign(pae(payload_type, payload))
    return {
        "payloadType": payload_type,
        "payload": base64.b64encode(payload).decode(),
        "signatures": [{"keyid": signer.keyid, "sig": base64.b64encode(signature).decode()}],
    }


def open_envelope(envelope: Any, key: Ed25519PublicKey, keyid: str, *, where: str) -> Any:
    """Verify an envelope signed by ``keyid`` and return its decoded JSON payload."""
    if not isinstance(envelope, dict):
        raise VerificationError("envelope is not a JSON object", where=where)
    try:
        payload = base64.b64decode(envelope["payload"], validate=True)
        payload_type = str(envelope["payloadType"])
        signatures = [
            base64.b64decode(s["sig"], validate=True)
            for s in envelope["signatures"]
            if s.get("keyid") == keyid
        ]
    except (KeyError, TypeError, AttributeError, binascii.Error) as exc:
        raise VerificationError(f"malformed DSSE envelope ({exc})", where=where) from exc
    if not signatures:
        raise VerificationError(f"envelope has no signature by key {keyid}", where=where)
    if not any(verify(key, pae(payload_type, payload), sig) for sig in signatures):
        raise VerificationError("envelope signature does not verify", where=where)
    try:
        return json.loads(payload)
    except ValueError as exc:
        raise VerificationError("envelope payload is not JSON", where=where) from exc
