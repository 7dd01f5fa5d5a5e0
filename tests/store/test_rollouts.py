"""The rollout controller's state on SQLite and PostgreSQL: one active rollout per environment
and service, and one controller per rollout, even when they race."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from clearance.core.rollout import CANARY, Phase, Plan, Step
from clearance.errors import ConflictError, StoreError
from clearance.store import rollouts as store
from clearance.store.rollouts import Rollout
from clearance.usecases.instance import Instance


def _rollout(rollout_id: str, service: str = "orders") -> Rollout:
    return Rollout(
        id=rollout_id,
        env="prod",
        service=service,
        digest="sha256:" + "ab" * 32,
        name="orders.whl",
        version="1.0",
        stable_digest=None,
        plan=Plan("initial", (Step("initial deployment", {CANARY: 100}),)),
        step=0,
        phase=Phase.RUNNING,
        step_started=None,
        reason=None,
        request=None,
        owner=None,
        lease_until=None,
        actor="d",
        created_at="2026-11-29T00:00:00Z",
        updated_at="2026-11-29T00:00:00Z",
    )


def _insert(instance: Instance, r: Rollout) -> None:
    with instance.ledger.appending() as appender:
        store.insert(instance.db, appender.raw, r)


def test_one_active_rollout_per_environment_and_service(instance: Instance) -> None:
    _insert(instance, _rollout("r-1"))
    with pytest.raises(ConflictError, match="r-1 of orders in prod is still active"):
        _insert(instance, _rollout("r-2"))
    _insert(instance, _rollout("r-3", service="portal"))
    # The database itself refuses a second active row, whatever code path tries it.
    with pytest.raises(StoreError), instance.db.raw_write() as raw:
        cursor = raw.cursor()
        cursor.execute(
            instance.db.sql(
                "INSERT INTO rollouts (id, env, service, digest, name, version, plan, step, "
                "phase, actor, created_at, updated_at) VALUES (?, 'prod', 'orders', 'x', 'x', "
                "'x', '{}', 0, 'paused', 'x', 'x', 'x')"
            ),
            ("r-4",),
        )
    with instance.ledger.appending() as appender:
        store.change(instance.db, appender.raw, "r-1", phase=Phase.ABORTED)
    _insert(instance, _rollout("r-5"))  # the first one ended: a new one may start
    assert {r.id for r in store.find(instance.db, env="prod", active=True)} == {"r-3", "r-5"}


def test_two_controllers_never_drive_one_rollout(instance: Instance) -> None:
    _insert(instance, _rollout("r-1"))
    start = threading.Barrier(8)
    now = time.time()

    def claim(owner: str) -> bool:
        start.wait()
        return store.claim(instance.db, "r-1", owner, now, 30.0)

    with ThreadPoolExecutor(8) as pool:
        won = [
            o
            for o, ok in zip(
                (f"c{i}" for i in range(8)),
                pool.map(claim, [f"c{i}" for i in range(8)]),
                strict=True,
            )
            if ok
        ]
    assert len(won) == 1
    holder = won[0]
    other = "c9"
    assert store.claim(instance.db, "r-1", holder, now + 1, 30.0), "the holder renews"
    assert not store.claim(instance.db, "r-1", other, now + 2, 30.0)
    assert store.claim(instance.db, "r-1", other, now + 32, 30.0), "an expired lease is taken"
    assert not store.claim(instance.db, "r-1", holder, now + 33, 30.0), "the old holder lost it"
    store.release(instance.db, "r-1", holder)  # releasing what it no longer holds changes nothing
    loaded = store.load(instance.db, "r-1")
    assert loaded is not None and loaded.owner == other
    store.release(instance.db, "r-1", other)
    assert store.claim(instance.db, "r-1", holder, now + 34, 30.0)
