"""Where an instance keeps its state, read once from the environment (or the CLI's options).

| setting                  | default                                   |
|--------------------------|-------------------------------------------|
| CLEARANCE_HOME           | ``~/.clearance``                          |
| CLEARANCE_DATABASE_URL   | ``sqlite:///$CLEARANCE_HOME/clearance.db`` |
| CLEARANCE_BLOB_URL       | ``file://$CLEARANCE_HOME/blobs``          |
| CLEARANCE_SIGNING_KEY    | ``$CLEARANCE_HOME/keys/signing-key.pem``  |
| CLEARANCE_ACTOR          | git's ``user.email``, else the OS user    |
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

#: Every setting, with what it does; docs/configuration.md is checked against this by a test.
SETTINGS = {
    "CLEARANCE_HOME": "state directory: database, blobs and keys unless set separately",
    "CLEARANCE_DATABASE_URL": "sqlite:///PATH or postgresql://USER@HOST/DB",
    "CLEARANCE_BLOB_URL": "where raw reports and envelopes are kept (file:///PATH)",
    "CLEARANCE_SIGNING_KEY": "PEM file of the instance's Ed25519 signing key",
    "CLEARANCE_ACTOR": "who is acting, when --actor is not given",
    "CLEARANCE_URL": "a Clearance server to talk to instead of a local instance",
    "CLEARANCE_TOKEN": "the API token for CLEARANCE_URL",
}


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str
    blob_url: str
    key_path: Path
    actor: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str], *, home: Path | None = None) -> Settings:
        root = (home or Path(env.get("CLEARANCE_HOME") or "~/.clearance")).expanduser()
        root = root.resolve()
        return cls(
            home=root,
            database_url=env.get("CLEARANCE_DATABASE_URL") or f"sqlite:///{root / 'clearance.db'}",
            blob_url=env.get("CLEARANCE_BLOB_URL") or f"file://{root / 'blobs'}",
            key_path=Path(env.get("CLEARANCE_SIGNING_KEY") or root / "keys" / "signing-key.pem"),
            actor=env.get("CLEARANCE_ACTOR") or None,
        )
