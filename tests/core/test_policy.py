"""Policy-as-code: the reference example is accepted; every error names file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from clearance.core.policy import Mode, PolicyError, cel_activation, parse_policy

EXAMPLE = (Path(__file__).parent.parent / "fixtures" / "clearance.yaml").read_text()


def problems(text: str) -> list[str]:
    with pytest.raises(PolicyError) as info:
        parse_policy(text, "clearance.yaml")
    return [p.render("clearance.yaml") for p in info.value.problems]


class TestExample:
    def test_reference_policy_is_accepted_as_it_is(self) -> None:
        policy = parse_policy(EXAMPLE)
        assert [t.name for t in policy.tiers] == ["high", "medium", "low"]
        assert policy.environments == ("dev", "staging", "prod")
        assert policy.tier("high").require.approvals is not None
        assert [r.type for r in policy.tier("low").require.evidence] == ["unit-tests"]
        assert policy.digest.startswith("sha256:")

    def test_small_team_risks_are_warnings(self) -> None:
        warnings = [w.render("clearance.yaml") for w in parse_policy(EXAMPLE).warnings]
        assert warnings[0].startswith(
            "clearance.yaml:17: tiers.high.require.approvals.count: needs all 2 of "
            "alice@example.org, carol@example.org"
        )

    def test_conditions_are_compiled_and_evaluated(self) -> None:
        high = parse_policy(EXAMPLE).tier("high")
        context = {"signals": ["phi"], "services": [], "files": [], "change": {}}
        assert high.condition.holds(cel_activation(context)) == (True, None)
        assert high.condition.holds(cel_activation({**context, "signals": ["ui_copy"]})) == (
            False,
            None,
        )


class TestErrors:
    def test_tier_without_when(self) -> None:
        text = EXAMPLE.replace("    when: 'true'\n", "")
        assert problems(text) == ["clearance.yaml:26: tiers.low.when: is required"]

    def test_cel_syntax_error(self) -> None:
        text = EXAMPLE.replace("when: 'true'", "when: 'true &&'")
        assert problems(text) == [
            "clearance.yaml:27: tiers.low.when: CEL syntax error at column 6 in 'true &&'"
        ]

    def test_unknown_signal_and_name_in_condition(self) -> None:
        text = EXAMPLE.replace('"phi" in signals ||', '"phy" in signals || owner == "x" ||')
        assert problems(text) == [
            "clearance.yaml:14: tiers.high.when: unknown name 'owner' (conditions can use "
            "change, files, services, signals)",
            "clearance.yaml:14: tiers.high.when: unknown signal 'phy' in condition (declared: "
            "phi, clinical_logic, schema_migration, infrastructure, ui_copy)",
        ]

    def test_macro_variables_are_not_unknown_names(self) -> None:
        text = EXAMPLE.replace(
            "when: 'true'", "when: 'files.exists(f, f.endsWith(\".md\")) || true'"
        )
        parse_policy(text)

    def test_unknown_environment(self) -> None:
        text = EXAMPLE.replace(
            "evidence: [privacy-review]}", "evidence: [privacy-review], at: [qa]}"
        )
        assert problems(text) == [
            "clearance.yaml:19: tiers.high.require.checklists.0.at: unknown environment 'qa' "
            "(environments: dev, staging, prod)"
        ]

    def test_role_without_members_and_unknown_role(self) -> None:
        text = EXAMPLE.replace("clinical-safety: [carol@example.org]", "clinical-safety: []")
        assert (
            "clearance.yaml:33: roles.clinical-safety: has no members: nobody could hold "
            "this role" in problems(text)
        )
        text = EXAMPLE.replace("roles: [release-manager]}", "roles: [release-managers]}")
        assert problems(text) == [
            "clearance.yaml:25: tiers.medium.require.approvals.roles: unknown role "
            "'release-managers': declare it under roles"
        ]

    def test_approval_rule_that_can_never_be_met(self) -> None:
        text = EXAMPLE.replace("count: 2, roles", "count: 3, roles")
        assert problems(text) == [
            "clearance.yaml:17: tiers.high.require.approvals.count: needs 3 distinct approvers "
            "but only 2 people hold release-manager, clinical-safety: this rule can never be met"
        ]

    def test_unknown_field_duplicate_key_and_yaml_syntax(self) -> None:
        assert problems(EXAMPLE.replace("version: 1", "version: 1\nversoin: 2")) == [
            "clearance.yaml:2: versoin: is not a known field"
        ]
        assert problems(EXAMPLE + "roles: {}\n") == ["clearance.yaml:34: duplicate key 'roles'"]
        assert problems("version: 1\ntiers: [\n") == [
            "clearance.yaml:3: YAML syntax error: expected the node content, but found "
            "'<stream end>'"
        ]
        assert problems("- just a list\n") == [
            "clearance.yaml:1: the policy must be a YAML mapping"
        ]

    def test_every_error_is_reported_at_once(self) -> None:
        text = EXAMPLE.replace("when: 'true'", "when: 'true &&'").replace(
            "roles: [release-manager]}", "roles: [release-manager], at: [qa]}"
        )
        assert len(problems(text)) == 2


class TestModes:
    def test_any_control_can_be_warn_only(self) -> None:
        text = EXAMPLE.replace(
            "evidence: [unit-tests]\n      approvals: {count: 1}",
            "evidence: [{type: unit-tests, mode: warn}]\n      approvals: {count: 1, mode: warn}",
        )
        low = parse_policy(text).tier("low")
        assert low.require.evidence[0].mode is Mode.WARN
        assert low.require.approvals is not None and low.require.approvals.mode is Mode.WARN
