"""Accounts: argon2id hashes, ledger records without secrets, the authenticator, the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from clearance.cli.app import app
from clearance.core.roles import Role
from clearance.errors import ConflictError, InputError, NotFoundError
from clearance.settings import SETTINGS, Settings
from clearance.store.tables import accounts as accounts_table
from clearance.usecases.accounts import (
    CREATED,
    DISABLED,
    LocalAuthenticator,
    create_account,
    disable_account,
    display_names,
    list_accounts,
)
from clearance.usecases.instance import Instance, init

PASSWORD = "a long enough passphrase"


def stored_hash(instance: Instance, email: str) -> str:
    with instance.db.read() as conn:
        row = conn.execute(accounts_table.select().where(accounts_table.c.email == email)).first()
    assert row is not None
    return str(row.password_hash)


class TestCreate:
    def test_stores_an_argon2id_hash_and_records_no_secret(self, instance: Instance) -> None:
        account = create_account(
            instance,
            email=" Alice@Example.org ",
            name="  Alice   Adams ",
            role=Role.RELEASE_MANAGER,
            password=PASSWORD,
            actor="admin@example.org",
        )
        assert (account.email, account.display_name) == ("alice@example.org", "Alice Adams")
        hashed = stored_hash(instance, "alice@example.org")
        assert hashed.startswith("$argon2id$") and PASSWORD not in hashed
        [record] = instance.ledger.find(kinds=[CREATED])
        assert record.actor == "admin@example.org"
        assert dict(record.data) == {
            "email": "alice@example.org",
            "name": "Alice Adams",
            "role": "release-manager",
        }
        assert PASSWORD not in json.dumps(dict(record.data))

    def test_an_email_is_never_reused(self, instance: Instance) -> None:
        create_account(
            instance,
            email="a@example.org",
            name="A",
            role=Role.AUDITOR,
            password=PASSWORD,
            actor="x",
        )
        size = instance.ledger.size()
        with pytest.raises(ConflictError, match=r"an account for a@example\.org exists"):
            create_account(
                instance,
                email="A@example.org",
                name="B",
                role=Role.ADMIN,
                password=PASSWORD,
                actor="x",
            )
        assert instance.ledger.size() == size

    @pytest.mark.parametrize(
        ("email", "name", "password", "message"),
        [
            ("not-an-email", "A", PASSWORD, "is not an email address"),
            ("a@localhost", "A", PASSWORD, "is not an email address"),
            ("a@example.org", "   ", PASSWORD, "printed name"),
            ("a@example.org", "A\x07B", PASSWORD, "printed name"),
            ("a@example.org", "A", "short", "shorter than 12"),
            ("a@example.org", "A", "x" * 2000, "longer than 1024"),
        ],
    )
    def test_bad_input_is_refused_and_writes_nothing(
        self, instance: Instance, email: str, name: str, password: str, message: str
    ) -> None:
        size = instance.ledger.size()
        with pytest.raises(InputError, match=message):
            create_account(
                instance, email=email, name=name, role=Role.APPROVER, password=password, actor="x"
            )
        assert instance.ledger.size() == size and list_accounts(instance) == []


class TestAuthenticator:
    @pytest.fixture
    def auth(self, instance: Instance) -> LocalAuthenticator:
        create_account(
            instance,
            email="dana@example.org",
            name="Dana Dev",
            role=Role.APPROVER,
            password=PASSWORD,
            actor="admin@example.org",
        )
        return LocalAuthenticator(instance)

    def test_right_password(self, auth: LocalAuthenticator) -> None:
        found = auth.verify("DANA@example.org", PASSWORD)
        assert found is not None and found.role is Role.APPROVER
        assert found.display_name == "Dana Dev"

    @pytest.mark.parametrize(
        ("email", "password"),
        [
            ("dana@example.org", PASSWORD + "!"),
            ("dana@example.org", ""),
            ("nobody@example.org", PASSWORD),
            ("dana@example.org", "x" * 5000),
        ],
    )
    def test_wrong_credentials(self, auth: LocalAuthenticator, email: str, password: str) -> None:
        assert auth.verify(email, password) is None

    def test_disabled_accounts_neither_verify_nor_resolve(
        self, auth: LocalAuthenticator, instance: Instance
    ) -> None:
        disable_account(instance, email="dana@example.org", actor="admin@example.org")
        assert auth.verify("dana@example.org", PASSWORD) is None
        assert auth.find("dana@example.org") is None
        [record] = instance.ledger.find(kinds=[DISABLED])
        assert record.data["email"] == "dana@example.org"
        assert display_names(instance, {"dana@example.org", "x@example.org"}) == {
            "dana@example.org": "Dana Dev"
        }
        with pytest.raises(NotFoundError, match="no active account"):
            disable_account(instance, email="dana@example.org", actor="admin@example.org")

    def test_old_parameters_are_upgraded_at_sign_in(
        self, auth: LocalAuthenticator, instance: Instance
    ) -> None:
        from argon2 import PasswordHasher
        from sqlalchemy import update

        weak = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash(PASSWORD)
        with instance.db.write() as conn:
            conn.execute(
                update(accounts_table)
                .where(accounts_table.c.email == "dana@example.org")
                .values(password_hash=weak)
            )
        assert auth.verify("dana@example.org", PASSWORD) is not None
        upgraded = stored_hash(instance, "dana@example.org")
        assert upgraded != weak and "m=19456,t=2,p=1" in upgraded


def cli(home: Path, *args: str, stdin: str = "") -> str:
    """The command in process (output as a user sees it); exit code 0 expected."""
    result = CliRunner().invoke(
        app, ["--home", str(home), *args], input=stdin, env=dict.fromkeys(SETTINGS, "")
    )
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output


def process(
    home: Path, *args: str, stdin: str = "", **env: str
) -> subprocess.CompletedProcess[str]:
    """The command as a real process: the error handler and exit codes of ``main()``."""
    full = {**os.environ, "CLEARANCE_HOME": str(home), "CLEARANCE_ACTOR": "admin@example.org"}
    for name in ("CLEARANCE_DATABASE_URL", "CLEARANCE_URL", "CLEARANCE_TOKEN"):
        full.pop(name, None)
    return subprocess.run(
        [sys.executable, "-m", "clearance", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env={**full, **env},
        timeout=120,
        check=False,
    )


class TestCli:
    @pytest.fixture
    def home(self, tmp_path: Path) -> Path:
        home = tmp_path / "home"
        init(Settings.from_env({}, home=home), actor="admin@example.org").close()
        return home

    def test_create_list_disable(self, home: Path) -> None:
        created = cli(
            home,
            "account",
            "create",
            "--email",
            "alice@example.org",
            "--name",
            "Alice Adams",
            "--role",
            "release-manager",
            "--password-stdin",
            "--actor",
            "admin@example.org",
            "--json",
            stdin=PASSWORD + "\n",
        )
        assert json.loads(created)["name"] == "Alice Adams" and PASSWORD not in created
        listed = json.loads(cli(home, "account", "list", "--json"))
        assert [(a["email"], a["role"], a["disabled_at"]) for a in listed] == [
            ("alice@example.org", "release-manager", None)
        ]
        assert "Alice Adams" in cli(home, "account", "list")
        assert "disabled alice@example.org" in cli(
            home, "account", "disable", "alice@example.org", "--actor", "admin@example.org"
        )
        assert json.loads(cli(home, "account", "list", "--json"))[0]["disabled_at"]

    def test_prompts_twice_for_the_password(self, home: Path) -> None:
        out = cli(
            home,
            *("account", "create", "--email", "carol@example.org", "--name", "Carol Chen"),
            *("--role", "approver", "--actor", "admin@example.org"),
            stdin=f"{PASSWORD}\n{PASSWORD}\n",
        )
        assert "created Carol Chen <carol@example.org> (approver)" in out

    def test_errors_exit_2_with_one_line(self, home: Path) -> None:
        base = ["account", "create", "--email", "bob@example.org", "--name", "Bob", "--role"]
        short = process(home, *base, "approver", "--password-stdin", stdin="short\n")
        assert short.returncode == 2 and "shorter than 12" in short.stderr
        remote = process(home, "account", "list", CLEARANCE_URL="http://127.0.0.1:9")
        assert remote.returncode == 2
        assert "account commands run on the instance itself" in remote.stderr
