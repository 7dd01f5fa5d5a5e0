"""Classification: the fast bulk matcher agrees with pathspec; tiers follow the policy."""

from __future__ import annotations

from pathlib import Path

import pathspec
from hypothesis import given, settings
from hypothesis import strategies as st

from clearance.core.classify import ChangeSet, FileChange, classify
from clearance.core.policy import PathMatcher, parse_policy

EXAMPLE = (Path(__file__).parent.parent / "fixtures" / "clearance.yaml").read_text()
POLICY = parse_policy(EXAMPLE)

segment = st.sampled_from(
    [
        "services",
        "orders",
        "rules",
        "patient",
        "web",
        "portal",
        "infra",
        "migrations",
        "models",
        "a.b",
        "Dockerfile",
        "x-y",
        "locales",
    ]
)
name = st.sampled_from(
    [
        "app.py",
        "patient_card.py",
        "help.md",
        "en.json",
        "main.tf",
        "Dockerfile",
        "0001.sql",
        "README",
    ]
)
paths = st.builds(lambda dirs, n: "/".join([*dirs, n]), st.lists(segment, max_size=4), name)
pattern = st.sampled_from(
    [
        "services/orders/**",
        "**/patient/**",
        "**/models/patient*.py",
        "infra/**",
        "Dockerfile",
        "web/**/*.md",
        "web/**/locales/**",
        "*.tf",
        "**/migrations/**",
        "services/*/rules/**",
        "/README",
        "docs/",
        "a.b/**/[a-m]*.py",
        "**/x-y",
    ]
)


def change(*files: str) -> ChangeSet:
    return ChangeSet(
        "base", "head", "dana@example.org", "msg", tuple(FileChange(f, 1, 0) for f in files)
    )


class TestMatcher:
    @given(st.lists(pattern, min_size=1, max_size=6), st.lists(paths, max_size=30))
    @settings(max_examples=200)
    def test_bulk_matching_equals_pathspec(self, patterns: list[str], files: list[str]) -> None:
        matcher = PathMatcher.compile("s", patterns)
        reference = pathspec.PathSpec.from_lines("gitignore", patterns)
        for f in files:
            assert (matcher.match(f) is not None) == reference.match_file(f), f

    def test_negation_follows_gitignore_order(self) -> None:
        matcher = PathMatcher.compile("s", ["web/**", "!web/portal/help.md"])
        assert matcher.match("web/portal/app.js") is not None
        assert matcher.match("web/portal/help.md") is None


class TestClassify:
    def test_copy_fix_is_low(self) -> None:
        result = classify(POLICY, change("web/portal/help.md"))
        assert (result.tier, result.signals, result.services) == ("low", ("ui_copy",), ("portal",))
        assert result.reason == "true holds"

    def test_infrastructure_is_medium(self) -> None:
        result = classify(POLICY, change("infra/deploy.yaml", "Dockerfile"))
        assert result.tier == "medium" and result.signals == ("infrastructure",)

    def test_two_services_is_medium(self) -> None:
        result = classify(POLICY, change("services/orders/app.py", "web/portal/app.js"))
        assert result.tier == "medium" and set(result.services) == {"orders", "portal"}

    def test_medication_rule_touching_phi_is_high_with_privacy_checklist(self) -> None:
        result = classify(
            POLICY, change("services/orders/rules/dose.py", "services/orders/models/patient.py")
        )
        assert result.tier == "high"
        assert set(result.signals) == {"clinical_logic", "phi"}
        assert [c["evidence"][0]["type"] for c in result.checklists] == ["privacy-review"]
        explained = {(m.kind, m.name, m.pattern): m.files for m in result.matches}
        assert explained[("signal", "phi", "**/models/patient*.py")] == (
            "services/orders/models/patient.py",
        )

    def test_json_round_trip(self) -> None:
        result = classify(POLICY, change("services/orders/migrations/0002.sql"))
        assert type(result).from_json(result.to_json()) == result
        assert result.to_json()["matches"][0] == {
            "signal": "schema_migration",
            "pattern": "**/migrations/**",
            "files": ["services/orders/migrations/0002.sql"],
            "count": 1,
        }

    def test_condition_over_change_lines(self) -> None:
        text = EXAMPLE.replace(
            "when: '\"infrastructure\" in signals || size(services) > 1'",
            "when: 'change.lines_added > 100'",
        )
        big = ChangeSet("b", "h", "a", "m", (FileChange("README", 500, 0),))
        assert classify(parse_policy(text), big).tier == "medium"
