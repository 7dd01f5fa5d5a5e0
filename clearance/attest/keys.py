"""The signing port and its embedded implementation: an Ed25519 key in a PEM file.

DSSE key ids are ``sha256:<hex>`` of the public key's DER SubjectPublicKeyInfo, so anyone holding
the PEM from ``clearance key show`` can derive the id themselves (docs/decisions/0002).
A KMS- or HSM-held key only needs to implement :class:`Signer`.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from clearance.errors import SigningError


class Signer(Protocol):
    @property
    def keyid(self) -> str: ...

    @property
    def public_key(self) -> Ed25519PublicKey: ...

    def sign(self, data: bytes) -> bytes: ...


def public_key_raw(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_key_pem(key: Ed25519PublicKey) -> str:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def keyid_of(key: Ed25519PublicKey) -> str:
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return "sha256:" + hashlib.sha256(der).hexdigest()


def load_public_key(pem: bytes, *, where: str) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(pem)
    except ValueError as exc:
        raise SigningError(f"not a PEM public key: {exc}", where=where) from exc
    if not isinstance(key, Ed25519PublicKey):
        raise SigningError("not an Ed25519 public key", where=where)
    return key


def verify(key: Ed25519PublicKey, data: bytes, signature: bytes) -> bool:
    try:
        key.verify(signature, data)
    except InvalidSignature:
        return False
    return True


class FileSigner:
    """An Ed25519 private key kept in a PEM file readable only by its owner."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._key = private_key
        self._public = private_key.public_key()
        self._keyid = keyid_of(self._public)

    @classmethod
    def create(cls, path: Path) -> FileSigner:
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(pem)
        return cls(key)

    @classmethod
    def load(cls, path: Path) -> FileSigner:
        try:
            pem = path.read_bytes()
        except OSError as exc:
            raise SigningError(
                f"cannot read the signing key: {exc.strerror}", where=str(path)
            ) from exc
        try:
            key = serialization.load_pem_private_key(pem, password=None)
        except (ValueError, TypeError) as exc:
            raise SigningError(f"not a usable PEM private key: {exc}", where=str(path)) from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise SigningError("the signing key is not an Ed25519 key", where=str(path))
        return cls(key)

    @property
    def keyid(self) -> str:
        return self._keyid

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self._public

    def sign(self, data: bytes) -> bytes:
        return self._key.sign(data)
