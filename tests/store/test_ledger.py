"""The ledger on real SQLite and PostgreSQL: appends, proofs, and tampering by direct SQL."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError

from clearance.core import merkle
from clearance.core.ledger import parse_checkpoint
from clearance.files import read_text
from clearance.settings import Settings
from clearance.store.database import normalise_url
from clearance.usecases.instance import Instance, init, open_instance
from clearance.usecases.ledger import export_checkpoint, verify_ledger


def fill(instance: Instance, n: int) -> None:
    for i in range(n):
        instance.ledger.append("test.record", f"subject-{i % 3}", "tester@example.org", {"i": i})


class Attacker:
    """Someone with write access to the database, editing it behind Clearance's back."""

    def __init__(self, url: str) -> None:
        self.engine = create_engine(normalise_url(url))
        self.dialect = self.engine.dialect.name

    def run(self, *statements: str) -> None:
        with self.engine.begin() as conn:
            for table in ("ledger_entries",):
                if self.dialect == "postgresql":
                    conn.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER USER"))
                else:
                    conn.execute(text(f"DROP TRIGGER IF EXISTS {table}_no_update"))
                    conn.execute(text(f"DROP TRIGGER IF EXISTS {table}_no_delete"))
            for statement in statements:
                conn.exec_driver_sql(statement)
        self.engine.dispose()


class TestAppend:
    def test_each_append_is_checkpointed_and_verifies(self, instance: Instance) -> None:
        fill(instance, 12)
        result = verify_ledger(instance)
        assert result.ok, result.problems
        assert result.size == 13  # the instance.initialised record comes first
        cp = instance.ledger.latest_checkpoint()
        assert cp is not None and cp.size == 13 and cp.root == result.root

    def test_batch_append_writes_one_checkpoint(self, instance: Instance) -> None:
        with instance.ledger.appending() as appender:
            for i in range(5):
                appender.add("test.batch", None, "ci", {"i": i})
        entries = list(instance.ledger.stored_entries())
        assert [e.checkpoint is not None for e in entries[1:]] == [False] * 4 + [True]
        assert verify_ledger(instance).ok

    def test_failed_transaction_appends_nothing(self, instance: Instance) -> None:
        before = instance.ledger.size()
        with pytest.raises(RuntimeError), instance.ledger.appending() as appender:
            appender.add("test.record", None, "ci", {"i": 1})
            raise RuntimeError("crash before commit")
        assert instance.ledger.size() == before
        fill(instance, 2)
        assert verify_ledger(instance).ok

    def test_ledger_tables_refuse_update_and_delete(self, instance: Instance) -> None:
        fill(instance, 2)
        engine = create_engine(normalise_url(instance.settings.database_url))
        for statement in ("UPDATE ledger_entries SET kind = 'x'", "DELETE FROM ledger_entries"):
            with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
                conn.execute(text(statement))
        engine.dispose()
        assert verify_ledger(instance).ok

    def test_proofs_from_stored_nodes_verify(self, instance: Instance) -> None:
        fill(instance, 20)
        size = instance.ledger.size()
        root = instance.ledger.root_at(size)
        for seq in (0, 7, size - 1):
            proof = instance.ledger.inclusion_proof(seq, size)
            assert merkle.verify_inclusion(instance.ledger.leaf_hash(seq), seq, size, proof, root)
        for old in (1, 8, 13, size):
            proof = instance.ledger.consistency_proof(old, size)
            assert merkle.verify_consistency(old, size, instance.ledger.root_at(old), root, proof)

    def test_open_with_another_key_is_refused(self, instance: Instance, tmp_path: Path) -> None:
        from clearance.attest.keys import FileSigner
        from clearance.errors import SigningError

        other = tmp_path / "other.pem"
        FileSigner.create(other)
        moved = Settings(**{**instance.settings.__dict__, "key_path": other})
        with pytest.raises(SigningError, match="not the key the ledger was created with"):
            open_instance(moved)


class TestTampering:
    """Every edit is found, and the report names the first bad entry."""

    @pytest.fixture
    def filled(self, instance: Instance) -> Instance:
        fill(instance, 9)
        assert verify_ledger(instance).ok
        return instance

    def attack(self, instance: Instance, *statements: str) -> list[str]:
        Attacker(instance.settings.database_url).run(*statements)
        result = verify_ledger(instance)
        assert not result.ok
        return [str(p) for p in result.problems]

    def test_changed_record(self, filled: Instance) -> None:
        problems = self.attack(
            filled,
            "UPDATE ledger_entries SET body = replace(body, '\"i\":4', '\"i\":5') WHERE seq = 5",
        )
        assert problems[0] == "entry 5: record bytes do not match their stored leaf hash"

    def test_changed_record_with_recomputed_leaf_hash(self, filled: Instance) -> None:
        entry = next(e for e in filled.ledger.stored_entries() if e.seq == 5)
        forged = entry.body.replace(b'"i":4', b'"i":5')
        leaf = merkle.leaf_hash(forged).hex()
        blob = (
            f"X'{leaf}'"
            if Attacker(filled.settings.database_url).dialect == "sqlite"
            else (f"decode('{leaf}', 'hex')")
        )
        problems = self.attack(
            filled,
            f"UPDATE ledger_entries SET body = '{forged.decode()}', leaf_hash = {blob} "
            "WHERE seq = 5",
        )
        assert problems[0].startswith("entry 5: ")
        assert "entry 5: recomputed root differs from the signed checkpoint" in problems

    def test_deleted_middle_record(self, filled: Instance) -> None:
        problems = self.attack(filled, "DELETE FROM ledger_entries WHERE seq = 3")
        assert problems[0] == "entry 3: expected entry 3, found entry 4 there"

    def test_reordered_records(self, filled: Instance) -> None:
        problems = self.attack(
            filled,
            "UPDATE ledger_entries SET seq = 100 WHERE seq = 2",
            "UPDATE ledger_entries SET seq = 2 WHERE seq = 6",
            "UPDATE ledger_entries SET seq = 6 WHERE seq = 100",
        )
        assert problems[0] == "entry 2: record says it is entry 6"

    def test_inserted_record(self, filled: Instance) -> None:
        problems = self.attack(
            filled,
            "INSERT INTO ledger_entries (seq, kind, subject, recorded_at, body, leaf_hash, nodes) "
            "SELECT 1 + seq, kind, subject, recorded_at, body, leaf_hash, nodes "
            "FROM ledger_entries WHERE seq = 9",
        )
        assert problems[0].startswith("entry 10: record says it is entry 9")

    def test_forged_checkpoint_signature(self, filled: Instance) -> None:
        note = next(e for e in filled.ledger.stored_entries() if e.seq == 7).checkpoint
        assert note is not None
        cp = parse_checkpoint(note)
        forged = note.replace(cp.note().splitlines()[-1].split(" ")[-1][:12], "A" * 12)
        problems = self.attack(
            filled, f"UPDATE ledger_entries SET checkpoint = '{forged}' WHERE seq = 7"
        )
        assert problems[0] in (
            "entry 7: checkpoint signature does not verify",
            "entry 7: checkpoint is not signed by this ledger's key",
        )

    def test_changed_subtree_hash(self, filled: Instance) -> None:
        blob = (
            "X'00'"
            if Attacker(filled.settings.database_url).dialect == "sqlite"
            else ("decode('00', 'hex')")
        )
        problems = self.attack(filled, f"UPDATE ledger_entries SET nodes = {blob} WHERE seq = 7")
        assert problems == ["entry 7: stored Merkle subtree hashes differ from the recomputed ones"]

    def test_changed_indexed_column(self, filled: Instance) -> None:
        problems = self.attack(filled, "UPDATE ledger_entries SET subject = 'other' WHERE seq = 2")
        assert problems == ["entry 2: indexed kind/subject columns differ from the record"]

    def test_deleting_the_newest_records_is_caught_by_a_witness(
        self, filled: Instance, tmp_path: Path
    ) -> None:
        witness = tmp_path / "witness.note"
        export_checkpoint(filled, witness)
        Attacker(filled.settings.database_url).run("DELETE FROM ledger_entries WHERE seq >= 8")
        assert verify_ledger(filled).ok  # a hash chain alone cannot see this...
        result = verify_ledger(filled, against=read_text(witness))  # ...the witness checkpoint can
        assert [str(p) for p in result.problems] == [
            "the log has 8 entries but the witness checkpoint covers 10: entries were removed"
        ]

    def test_rewritten_history_is_caught_by_a_witness(
        self, filled: Instance, tmp_path: Path
    ) -> None:
        """A thief of the signing key can rebuild a log that verifies, but not fool a witness."""
        witness = tmp_path / "witness.note"
        export_checkpoint(filled, witness)
        fill(filled, 3)
        assert verify_ledger(filled, against=read_text(witness)).ok
        records = [json.loads(e.body) for e in filled.ledger.stored_entries()]
        Attacker(filled.settings.database_url).run("DELETE FROM ledger_entries")
        with open_instance(filled.settings) as rebuilt:
            for r in records:
                data = {"i": -1} if r["seq"] == 2 else r["data"]
                rebuilt.ledger.append(r["kind"], r["subject"], r["actor"], data)
            assert verify_ledger(rebuilt).ok
            result = verify_ledger(rebuilt, against=read_text(witness))
        assert [str(p) for p in result.problems] == [
            "the current log does not extend the witness checkpoint of size 10: "
            "history before it was rewritten"
        ]


def _append_worker(url: str, home: str, n: int) -> None:
    settings = Settings.from_env({"CLEARANCE_DATABASE_URL": url}, home=Path(home))
    with open_instance(settings) as inst:
        for i in range(n):
            inst.ledger.append(
                "test.concurrent", None, f"worker-{multiprocessing.current_process().pid}", {"i": i}
            )


class TestConcurrency:
    def test_two_processes_never_fork_the_log(self, instance: Instance) -> None:
        ctx = multiprocessing.get_context("spawn")
        workers = [
            ctx.Process(
                target=_append_worker,
                args=(instance.settings.database_url, str(instance.settings.home), 60),
            )
            for _ in range(2)
        ]
        for w in workers:
            w.start()
        for w in workers:
            w.join(120)
            assert w.exitcode == 0
        result = verify_ledger(instance)
        assert result.ok, result.problems
        assert result.size == 1 + 120


class TestProperties:
    """Generated histories: any batching verifies, every proof checks, any one edit is found."""

    @given(
        batches=st.lists(st.integers(1, 6), min_size=1, max_size=8),
        data=st.data(),
    )
    @settings(
        max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
    )
    def test_histories(
        self, sqlite_settings: Settings, batches: list[int], data: st.DataObject
    ) -> None:
        import shutil

        shutil.rmtree(sqlite_settings.home, ignore_errors=True)
        with init(sqlite_settings, actor="p", origin="clearance.test/p") as inst:
            for n, size in enumerate(batches):
                with inst.ledger.appending() as appender:
                    for i in range(size):
                        appender.add("prop.record", f"s{i % 2}", "p", {"batch": n, "i": i})
            result = verify_ledger(inst)
            assert result.ok and result.size == 1 + sum(batches)
            seq = data.draw(st.integers(0, result.size - 1))
            old = data.draw(st.integers(1, result.size))
            proof = inst.ledger.inclusion_proof(seq, result.size)
            assert merkle.verify_inclusion(
                inst.ledger.leaf_hash(seq), seq, result.size, proof, result.root
            )
            cons = inst.ledger.consistency_proof(old, result.size)
            assert merkle.verify_consistency(
                old, result.size, inst.ledger.root_at(old), result.root, cons
            )
            victim = data.draw(st.integers(1, result.size - 1))
            Attacker(inst.settings.database_url).run(
                "UPDATE ledger_entries SET body = replace(body, '\"p\"', '\"q\"') "
                f"WHERE seq = {victim}"
            )
            problems = verify_ledger(inst).problems
            assert problems and problems[0].seq == victim
