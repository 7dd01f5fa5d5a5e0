"""The rollout controller's state in the database (table ``rollouts``).

Every change of a rollout's row is written inside the ledger's write transaction that records
the matching ledger entry (``Appender.raw``), so the row and the ledger never disagree. The one
exception is the lease (``claim``/``release``): a conditional UPDATE, atomic on SQLite and
PostgreSQL alike, so two controllers never drive the same rollout.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, or_, select, update

from clearance.core.rollout import Phase, Plan
from clearance.errors import ConflictError
from clearance.store.database import Database
from clearance.store.tables import rollouts

_COLUMNS = (
    "id",
    "env",
    "service",
    "digest",
    "name",
    "version",
    "stable_digest",
    "plan",
    "step",
    "phase",
    "step_started",
    "reason",
    "request",
    "owner",
    "lease_until",
    "actor",
    "created_at",
    "updated_at",
)


@dataclass(frozen=True)
class Rollout:
    id: str
    env: str
    service: str
    digest: str
    name: str
    version: str
    stable_digest: str | None
    plan: Plan
    step: int
    phase: Phase
    step_started: float | None
    reason: str | None
    request: dict[str, Any] | None
    owner: str | None
    lease_until: float | None
    actor: str
    created_at: str
    updated_at: str

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Rollout:
        return cls(
            id=row["id"],
            env=row["env"],
            service=row["service"],
            digest=row["digest"],
            name=row["name"],
            version=row["version"],
            stable_digest=row["stable_digest"],
            plan=Plan.from_json(json.loads(row["plan"])),
            step=int(row["step"]),
            phase=Phase(row["phase"]),
            step_started=row["step_started"],
            reason=row["reason"],
            request=json.loads(row["request"]) if row["request"] else None,
            owner=row["owner"],
            lease_until=row["lease_until"],
            actor=row["actor"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )

    def to_json(self) -> dict[str, Any]:
        step = self.plan.steps[min(self.step, len(self.plan.steps) - 1)]
        return {
            "id": self.id,
            "env": self.env,
            "service": self.service,
            "digest": self.digest,
            "name": self.name,
            "version": self.version,
            "stable_digest": self.stable_digest,
            "strategy": self.plan.strategy,
            "phase": self.phase.value,
            "step": self.step,
            "steps": len(self.plan.steps),
            "current": step.to_json(),
            "plan": self.plan.to_json(),
            "held": dict(self.plan.held),
            "reason": self.reason,
            "request": self.request,
            "owner": self.owner,
            "lease_until": self.lease_until,
            "started_by": self.actor,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


def insert(db: Database, raw: Any, r: Rollout) -> None:
    """Inside the ledger transaction; an active rollout of the same env and service refuses."""
    cursor = raw.cursor()
    try:
        cursor.execute(
            db.sql("SELECT id FROM rollouts WHERE env = ? AND service = ? AND phase IN (?, ?)"),
            (r.env, r.service, Phase.RUNNING.value, Phase.PAUSED.value),
        )
        found = cursor.fetchone()
        if found is not None:
            raise ConflictError(
                f"rollout {found[0]} of {r.service} in {r.env} is still active",
                hint="finish it first: clearance rollout status / promote / abort",
            )
        values = (
            r.id,
            r.env,
            r.service,
            r.digest,
            r.name,
            r.version,
            r.stable_digest,
            json.dumps(r.plan.to_json()),
            r.step,
            r.phase.value,
            r.step_started,
            r.reason,
            json.dumps(r.request) if r.request else None,
            r.owner,
            r.lease_until,
            r.actor,
            r.created_at,
            r.updated_at,
        )
        cursor.execute(
            db.sql(
                f"INSERT INTO rollouts ({', '.join(_COLUMNS)}) "  # noqa: S608 - constant names
                f"VALUES ({', '.join('?' * len(_COLUMNS))})"
            ),
            values,
        )
    finally:
        cursor.close()


_SELECT = ", ".join(_COLUMNS)
_UPDATABLE = {"step", "phase", "step_started", "reason", "request", "updated_at", "owner"}
_UPDATABLE |= {"lease_until", "stable_digest"}


def change(db: Database, raw: Any, rollout_id: str, **values: Any) -> None:
    """Update columns of one rollout inside the ledger transaction."""
    unknown = set(values) - _UPDATABLE
    if unknown:
        raise ValueError(f"not updatable: {sorted(unknown)}")
    if "request" in values and values["request"] is not None:
        values["request"] = json.dumps(values["request"])
    if "phase" in values:
        values["phase"] = Phase(values["phase"]).value
    names = sorted(values)
    cursor = raw.cursor()
    try:
        cursor.execute(
            # column names checked against _UPDATABLE above; every value is a bound parameter
            db.sql(f"UPDATE rollouts SET {', '.join(f'{n} = ?' for n in names)} WHERE id = ?"),  # noqa: S608
            (*(values[n] for n in names), rollout_id),
        )
    finally:
        cursor.close()


def load(db: Database, rollout_id: str, raw: Any | None = None) -> Rollout | None:
    if raw is not None:
        cursor = raw.cursor()
        try:
            cursor.execute(
                db.sql(f"SELECT {_SELECT} FROM rollouts WHERE id = ?"),  # noqa: S608 - constants
                (rollout_id,),
            )
            row = cursor.fetchone()
        finally:
            cursor.close()
        return Rollout.from_row(dict(zip(_COLUMNS, row, strict=True))) if row else None
    with db.read() as conn:
        found = conn.execute(select(rollouts).where(rollouts.c.id == rollout_id)).mappings().first()
    return Rollout.from_row(dict(found)) if found else None


def find(
    db: Database, *, env: str | None = None, service: str | None = None, active: bool = False
) -> list[Rollout]:
    """Rollouts, newest first."""
    query = select(rollouts)
    if env is not None:
        query = query.where(rollouts.c.env == env)
    if service is not None:
        query = query.where(rollouts.c.service == service)
    if active:
        query = query.where(rollouts.c.phase.in_([Phase.RUNNING.value, Phase.PAUSED.value]))
    with db.read() as conn:
        rows = conn.execute(query.order_by(rollouts.c.created_at.desc(), rollouts.c.id)).mappings()
        return [Rollout.from_row(dict(r)) for r in rows]


def claim(db: Database, rollout_id: str, owner: str, now: float, lease: float) -> bool:
    """Take or renew the lease: only when nobody holds it, it is ours, or it has expired."""
    with db.write() as conn:
        result = conn.execute(
            update(rollouts)
            .where(
                and_(
                    rollouts.c.id == rollout_id,
                    or_(
                        rollouts.c.owner.is_(None),
                        rollouts.c.owner == owner,
                        rollouts.c.lease_until < now,
                    ),
                )
            )
            .values(owner=owner, lease_until=now + lease)
        )
        return result.rowcount == 1


def release(db: Database, rollout_id: str, owner: str) -> None:
    with db.write() as conn:
        conn.execute(
            update(rollouts)
            .where(and_(rollouts.c.id == rollout_id, rollouts.c.owner == owner))
            .values(owner=None, lease_until=None)
        )
