"""The gate, from facts alone: every control, why it is or is not met, and warn-only controls."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from clearance.core.approvals import evidence_set_digest
from clearance.core.classify import ChangeSet, FileChange, classify
from clearance.core.gates import decide
from clearance.core.policy import parse_policy
from clearance.core.release import ApprovalFact, EvidenceFact, PromotionFact, ReleaseFacts

EXAMPLE = (Path(__file__).parent.parent / "fixtures" / "clearance.yaml").read_text()
POLICY = parse_policy(EXAMPLE)
HIGH_EVIDENCE = ["unit-tests", "integration-tests", "contract-tests", "sast", "sca", "sbom"]


def facts(
    *files: str,
    evidence: tuple[str, ...] = (),
    failing: tuple[str, ...] = (),
    promoted: tuple[str, ...] = (),
) -> ReleaseFacts:
    change = ChangeSet("b", "h", "dana@example.org", "m", tuple(FileChange(f) for f in files))
    ev = tuple(
        EvidenceFact(
            i + 1,
            t,
            "junit",
            "FAILED" if t in failing else "PASSED",
            t not in failing,
            {"tests": 3},
            f"sha256:{i:064x}",
            "t",
        )
        for i, t in enumerate(evidence)
    )
    promos = tuple(PromotionFact(100 + i, e, "deployer", "t") for i, e in enumerate(promoted))
    return ReleaseFacts(
        "sha256:" + "a" * 64,
        "orders.zip",
        "dana@example.org",
        classify(POLICY, change),
        ev,
        (),
        promos,
    )


def approvals(
    f: ReleaseFacts,
    *who: str,
    env: str = "prod",
    meaning: str = "approval",
    evidence_set: str | None = None,
) -> ReleaseFacts:
    current = evidence_set or evidence_set_digest(f.evidence)
    made = tuple(ApprovalFact(200 + i, w, env, meaning, current, "t") for i, w in enumerate(who))
    return replace(f, approvals=f.approvals + made)


def control(decision: object, name: str) -> tuple[bool, str]:
    found = [c for c in decision.controls if c.control == name]  # type: ignore[attr-defined]
    assert found, f"no control {name}"
    return found[0].satisfied, found[0].detail


RULE = "services/orders/rules/dose.py"


class TestOrderAndEvidence:
    def test_first_environment_needs_only_classification(self) -> None:
        d = decide(POLICY, facts(RULE), "dev")
        assert d.allowed and [c.control for c in d.controls] == [
            "classification",
            "environment-order",
        ]

    def test_staging_lists_every_missing_control(self) -> None:
        d = decide(POLICY, facts(RULE), "staging")
        assert not d.allowed
        assert [c.control for c in d.blockers] == [
            "environment-order",
            *[f"evidence:{t}" for t in HIGH_EVIDENCE],
        ]
        assert control(d, "environment-order")[1] == (
            "not yet promoted to dev: staging requires the same digest in dev first"
        )
        assert control(d, "evidence:sca")[1].startswith("missing: no sca evidence recorded")

    def test_failing_junit_does_not_satisfy_unit_tests(self) -> None:
        f = facts(RULE, evidence=tuple(HIGH_EVIDENCE), failing=("unit-tests",), promoted=("dev",))
        d = decide(POLICY, f, "staging")
        assert [c.control for c in d.blockers] == ["evidence:unit-tests"]
        assert control(d, "evidence:unit-tests")[1] == ("failing: junit FAILED (tests=3), entry 1")

    def test_latest_report_of_a_type_counts(self) -> None:
        f = facts(RULE, evidence=(*HIGH_EVIDENCE, "unit-tests"), failing=(), promoted=("dev",))
        f = replace(
            f, evidence=(replace(f.evidence[0], passed=False, result="FAILED"), *f.evidence[1:])
        )
        assert decide(POLICY, f, "staging").allowed

    def test_prod_requires_staging_and_approvals(self) -> None:
        f = facts(RULE, evidence=tuple(HIGH_EVIDENCE), promoted=("dev",))
        d = decide(POLICY, f, "prod")
        assert [c.control for c in d.blockers] == ["environment-order", "approvals"]

    def test_checklist_applies_only_when_its_condition_held(self) -> None:
        f = facts(
            RULE,
            "services/orders/models/patient.py",
            evidence=tuple(HIGH_EVIDENCE),
            promoted=("dev",),
        )
        d = decide(POLICY, f, "staging")
        ok, detail = control(d, "checklist:privacy-review")
        assert not ok and detail.endswith('(required because "phi" in signals)')
        assert "checklist:rollback-drill" not in [c.control for c in d.controls]

    def test_unclassified_artifact_is_blocked_with_the_fix(self) -> None:
        f = replace(facts(RULE), classification=None)
        d = decide(None, f, "dev")
        assert not d.allowed
        assert "register it with --repo and --base" in d.controls[0].detail


class TestApprovals:
    def ready(self) -> ReleaseFacts:
        return facts(RULE, evidence=tuple(HIGH_EVIDENCE), promoted=("dev", "staging"))

    def test_two_role_holders_allow_prod(self) -> None:
        f = approvals(self.ready(), "alice@example.org", "carol@example.org")
        d = decide(POLICY, f, "prod")
        assert d.allowed, d.blockers
        assert control(d, "approvals")[1] == (
            "2 of 2 approvals for prod: alice@example.org (release-manager), "
            "carol@example.org (clinical-safety)"
        )

    def test_one_person_twice_counts_once(self) -> None:
        f = approvals(self.ready(), "alice@example.org", "alice@example.org")
        ok, detail = control(decide(POLICY, f, "prod"), "approvals")
        assert not ok and detail.startswith("1 of 2 approvals for prod: alice@example.org")
        assert "missing a clinical-safety approver" in detail

    def test_author_and_non_role_holders_do_not_count(self) -> None:
        f = approvals(self.ready(), "dana@example.org", "mallory@example.org", "alice@example.org")
        ok, detail = control(decide(POLICY, f, "prod"), "approvals")
        assert not ok
        assert "dana@example.org's approval does not count: they authored the change" in detail
        assert "mallory@example.org holds none of release-manager, clinical-safety" in detail

    def test_late_evidence_voids_earlier_approvals(self) -> None:
        f = approvals(self.ready(), "alice@example.org", "carol@example.org")
        late = EvidenceFact(
            300,
            "integration-tests",
            "junit",
            "PASSED",
            True,
            {"tests": 9},
            "sha256:" + "e" * 64,
            "t",
        )
        d = decide(POLICY, replace(f, evidence=(*f.evidence, late)), "prod")
        ok, detail = control(d, "approvals")
        assert not ok and detail.startswith("0 of 2 approvals for prod: none")
        assert (
            "alice@example.org's approval (entry 200) is void: the evidence changed after "
            "they signed; they must approve again"
        ) in detail

    def test_review_meaning_and_other_environment_do_not_count(self) -> None:
        f = approvals(self.ready(), "alice@example.org", meaning="review")
        f = approvals(f, "carol@example.org", env="staging")
        assert control(decide(POLICY, f, "prod"), "approvals")[1].startswith("0 of 2")

    def test_rule_that_cannot_be_met_for_this_author_says_so(self) -> None:
        f = replace(self.ready(), author="carol@example.org")
        ok, detail = control(decide(POLICY, f, "prod"), "approvals")
        assert (
            not ok
            and "this can never be met: only 1 eligible approver(s) once the "
            "author carol@example.org is excluded"
            in detail
        )

    @given(
        st.lists(
            st.sampled_from(
                ["alice@example.org", "carol@example.org", "dana@example.org", "bob@example.org"]
            ),
            max_size=6,
        )
    )
    def test_allowed_iff_both_roles_signed(self, signers: list[str]) -> None:
        d = decide(POLICY, approvals(self.ready(), *signers), "prod")
        assert d.allowed == {"alice@example.org", "carol@example.org"}.issubset(signers)


class TestWarnMode:
    def test_warn_controls_are_reported_but_do_not_block(self) -> None:
        text = EXAMPLE.replace(
            "evidence: [unit-tests]\n      approvals: {count: 1}",
            "evidence: [{type: unit-tests, mode: warn}]\n      approvals: {count: 1, mode: warn}",
        )
        policy = parse_policy(text)
        change = ChangeSet("b", "h", "dana@example.org", "m", (FileChange("web/portal/help.md"),))
        f = ReleaseFacts(
            "sha256:" + "a" * 64,
            "p",
            "dana@example.org",
            classify(policy, change),
            (),
            (),
            (PromotionFact(1, "dev", "d", "t"), PromotionFact(2, "staging", "d", "t")),
        )
        d = decide(policy, f, "prod")
        assert d.allowed
        warned = [c for c in d.controls if not c.satisfied]
        assert [(c.control, c.mode, c.blocking) for c in warned] == [
            ("evidence:unit-tests", "warn", False),
            ("approvals", "warn", False),
        ]
