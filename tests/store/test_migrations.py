"""Migrations: the recorded head is Alembic's head, and init is idempotent on both backends."""

from __future__ import annotations

from alembic.script import ScriptDirectory

from clearance.settings import Settings
from clearance.store.database import HEAD_REVISION, MIGRATIONS, Database
from clearance.usecases.instance import init


def test_head_revision_constant_matches_alembic() -> None:
    assert ScriptDirectory(str(MIGRATIONS)).get_current_head() == HEAD_REVISION


def test_init_twice_keeps_one_ledger(settings: Settings) -> None:
    with init(settings, actor="a", origin="clearance.test/m") as first:
        size = first.ledger.size()
    with init(settings, actor="b") as second:
        assert second.origin == "clearance.test/m"
        assert second.ledger.size() == size == 1
    db = Database(settings.database_url)
    assert db.current_revision() == HEAD_REVISION
    db.dispose()
