"""Environment configuration: secrets only as references, errors with file, line and key."""

from __future__ import annotations

import pytest

from clearance.core.envconfig import check_config
from clearance.errors import InputError


class TestConfig:
    def test_references_and_plain_settings_pass(self) -> None:
        text = "replicas: 2\ndb:\n  password: env:ORDERS_DB_PASSWORD\n  api_key: vault:kv/orders\n"
        assert check_config(text, "prod.yaml")["db"]["password"] == "env:ORDERS_DB_PASSWORD"

    def test_clear_text_secret_is_refused_with_line_and_key(self) -> None:
        text = "replicas: 2\ndb:\n  host: db.internal\n  password: hunter2\n"
        with pytest.raises(
            InputError,
            match=r"prod.yaml:4: db.password: looks like a secret "
            r"in clear text",
        ):
            check_config(text, "prod.yaml")

    def test_json_and_lists(self) -> None:
        text = '{"tenants": [{"name": "st-mary", "API_TOKEN": "abc123"}]}'
        with pytest.raises(InputError, match=r"tenants.0.API_TOKEN"):
            check_config(text, "staging.json")

    def test_not_a_mapping_and_bad_yaml(self) -> None:
        with pytest.raises(InputError, match="must be a mapping"):
            check_config("- a\n- b\n", "c.yaml")
        with pytest.raises(InputError, match=r"c.yaml:2: YAML syntax error"):
            check_config("a: [1,\n", "c.yaml")
