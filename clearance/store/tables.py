"""The database schema, as SQLAlchemy Core tables. Alembic migrations create and evolve it.

The ledger tables are append-only: migrations install triggers that refuse UPDATE and DELETE,
and no code path issues either (docs/decisions/0001).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

#: Facts fixed when the instance is initialised (origin, public key); insert-only.
instance_meta = Table(
    "clearance_meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

#: One row per ledger record: the canonical JSON leaf, its hash, the hashes of the perfect Merkle
#: subtrees this leaf completes (levels 1, 2, ... concatenated; the subtree of level L and index i
#: is completed by leaf (i + 1) * 2**L - 1), and on the last entry of each append the signed
#: checkpoint over the tree that ends there. Proofs and appends read O(log n) rows by primary key.
ledger_entries = Table(
    "ledger_entries",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("kind", String(64), nullable=False),
    Column("subject", String(128), nullable=True),
    Column("recorded_at", String(40), nullable=False),
    Column("body", Text, nullable=False),
    Column("leaf_hash", LargeBinary(32), nullable=False),
    Column("nodes", LargeBinary, nullable=False),
    Column("checkpoint", Text, nullable=True),
    Index("ix_ledger_entries_subject_kind", "subject", "kind"),
)

APPEND_ONLY_TABLES = ("clearance_meta", "ledger_entries")

#: The server's identities. Only a SHA-256 of each token is kept (tokens are 256-bit random, so a
#: fast hash is safe here; passwords would need argon2). Revocation sets ``revoked_at``.
api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(128), nullable=False, index=True),
    Column("role", String(32), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", String(40), nullable=False),
    Column("created_by", String(128), nullable=False),
    Column("expires_at", String(40), nullable=True),
    Column("revoked_at", String(40), nullable=True),
)

#: People who sign in to the web UI. The email is the actor recorded in the ledger and the
#: display name is the printed name shown with every signature; only an argon2id hash of the
#: password is kept. Disabling sets ``disabled_at``; accounts are never deleted, so a signature's
#: printed name can always be shown.
accounts = Table(
    "accounts",
    metadata,
    Column("email", String(320), primary_key=True),
    Column("display_name", String(200), nullable=False),
    Column("role", String(32), nullable=False),
    Column("password_hash", String(512), nullable=False),
    Column("created_at", String(40), nullable=False),
    Column("created_by", String(320), nullable=False),
    Column("disabled_at", String(40), nullable=True),
)

#: The rollout controller's state, one row per rollout (mutable, unlike the ledger, which gets an
#: entry for every step, verdict and decision). ``owner``/``lease_until`` is the controller that
#: drives it: claimed and renewed with a conditional UPDATE, so two controllers never drive the
#: same rollout. ``request`` is a pending command from a person (pause, resume, promote, abort).
rollouts = Table(
    "rollouts",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("env", String(64), nullable=False),
    Column("service", String(64), nullable=False),
    Column("digest", String(80), nullable=False),
    Column("name", String(256), nullable=False),
    Column("version", String(128), nullable=False),
    Column("stable_digest", String(80), nullable=True),
    Column("plan", Text, nullable=False),
    Column("step", Integer, nullable=False),
    Column("phase", String(16), nullable=False),
    Column("step_started", Float, nullable=True),
    Column("reason", Text, nullable=True),
    Column("request", Text, nullable=True),
    Column("owner", String(64), nullable=True),
    Column("lease_until", Float, nullable=True),
    Column("actor", String(320), nullable=False),
    Column("created_at", String(40), nullable=False),
    Column("updated_at", String(40), nullable=False),
)
