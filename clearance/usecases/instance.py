"""An instance of Clearance: its settings wired to the ports (database, ledger, blobs, key, clock).

``init`` creates one (idempotently); ``open`` refuses to run on a home or database that was never
initialised, or with a signing key other than the one the ledger was created with.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy import select

from clearance.attest.keys import FileSigner, Signer, keyid_of, public_key_pem
from clearance.clock import Clock, SystemClock, rfc3339
from clearance.errors import NotInitialisedError, SigningError
from clearance.settings import Settings
from clearance.store.blobs import BlobStore, open_blob_store
from clearance.store.database import Database
from clearance.store.ledger import LedgerStore
from clearance.store.tables import instance_meta

INITIALISED = "instance.initialised"


@dataclass
class Instance:
    settings: Settings
    db: Database
    blobs: BlobStore
    signer: Signer
    clock: Clock
    origin: str
    ledger: LedgerStore

    def close(self) -> None:
        self.db.dispose()

    def __enter__(self) -> Instance:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _read_meta(db: Database) -> dict[str, str]:
    with db.read() as conn:
        return {k: v for k, v in conn.execute(select(instance_meta.c.key, instance_meta.c.value))}


def init(
    settings: Settings, *, actor: str, origin: str | None = None, clock: Clock | None = None
) -> Instance:
    """Create the home, database schema and signing key; safe to run again (it upgrades)."""
    settings.home.mkdir(parents=True, exist_ok=True, mode=0o700)
    db = Database(settings.database_url, create=True)
    try:
        return _initialise(settings, db, actor=actor, origin=origin, clock=clock)
    except BaseException:
        db.dispose()
        raise


def _initialise(
    settings: Settings, db: Database, *, actor: str, origin: str | None, clock: Clock | None
) -> Instance:
    db.upgrade()
    key_path = settings.key_path
    signer = FileSigner.load(key_path) if key_path.exists() else FileSigner.create(key_path)
    meta = _read_meta(db)
    if not meta:
        name = origin or f"clearance.local/{secrets.token_hex(6)}"
        if any(c.isspace() or c == "+" for c in name) or not name:
            raise NotInitialisedError(f"origin {name!r} may not contain spaces or '+'")
        with db.write() as conn:
            conn.execute(
                instance_meta.insert(),
                [
                    {"key": "origin", "value": name},
                    {"key": "keyid", "value": signer.keyid},
                    {"key": "public_key", "value": public_key_pem(signer.public_key)},
                ],
            )
    instance = open_instance(settings, clock=clock, db=db)
    if instance.ledger.size() == 0:
        instance.ledger.append(
            INITIALISED,
            None,
            actor,
            {
                "origin": instance.origin,
                "keyid": signer.keyid,
                "public_key": public_key_pem(signer.public_key),
                "initialised_at": rfc3339(instance.clock.now()),
            },
        )
    return instance


def open_instance(
    settings: Settings, *, clock: Clock | None = None, db: Database | None = None
) -> Instance:
    own = db is None
    db = db or Database(settings.database_url)
    try:
        return _wire(settings, db, clock or SystemClock())
    except BaseException:
        if own:
            db.dispose()
        raise


def _wire(settings: Settings, db: Database, clock: Clock) -> Instance:
    db.require_current()
    meta = _read_meta(db)
    if "origin" not in meta:
        raise NotInitialisedError(
            "the database was never initialised", where=db.describe(), hint="run `clearance init`"
        )
    if not settings.key_path.exists():
        raise NotInitialisedError(
            "no signing key", where=str(settings.key_path), hint="run `clearance init`"
        )
    signer = FileSigner.load(settings.key_path)
    if keyid_of(signer.public_key) != meta["keyid"]:
        raise SigningError(
            f"this key ({signer.keyid}) is not the key the ledger was created with "
            f"({meta['keyid']})",
            where=str(settings.key_path),
        )
    return Instance(
        settings=settings,
        db=db,
        blobs=open_blob_store(settings.blob_url),
        signer=signer,
        clock=clock,
        origin=meta["origin"],
        ledger=LedgerStore(db, signer, meta["origin"], clock),
    )
