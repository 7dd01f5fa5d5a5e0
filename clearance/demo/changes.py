"""The three changes the demo governs, from commit to production, and what each one shows.

1. A UI copy fix in the portal: low tier, the portal's tests and one approval from anyone but the
   author. Few controls, so it flows quickly.
2. An infrastructure change: medium tier. bandit's error-level finding (``shell=True``) fails the
   SAST evidence and the staging gate blocks, naming the control; the fix commit is a new build
   that passes. A configuration with a clear-text password is refused; the release manager
   approves.
3. A medication-rule change that also touches the patient model (PHI): high tier, six evidence
   types plus the privacy-review checklist. The author's self-approval is refused; evidence that
   arrives after an approval voids it; the two required roles approve; the release is complete
   once post-deploy verification is recorded.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from clearance.core.digests import Digest
from clearance.demo import sample
from clearance.demo.narrate import completeness_table
from clearance.demo.pipeline import DEPLOYER, Pipeline
from clearance.usecases.releases import POST_DEPLOY, release_show

ALICE = "alice@example.org"  # release-manager
CAROL = "carol@example.org"  # clinical-safety
BOB = "bob@example.org"  # a teammate with no role
PRIYA = "priya@example.org"  # privacy officer
ENVIRONMENTS = ("dev", "staging", "prod")
CONFIG: dict[str, dict[str, Any]] = {
    "portal": {"replicas": 1, "cdn_origin": "https://portal.example.org"},
    "orders": {"replicas": 3, "db_password": "env:ORDERS_DB_PASSWORD", "log_level": "info"},
}


@dataclass(frozen=True)
class Shipped:
    """One change, released: its tier, the digest that reached prod, and how long it took."""

    tier: str
    digest: Digest
    head: str
    seconds: float
    blocked: Digest | None = None


def _verify_in_prod(p: Pipeline, digest: Digest, what: str) -> None:
    p.story.step(
        "Post-deploy verification in prod, recorded as evidence",
    )
    p.story.why(
        f"Stands for the deployer's smoke check ({what}); the embedded demo deploys nothing, "
        "so the demo writes this result itself."
    )
    p.generic(
        digest,
        POST_DEPLOY,
        {"passed": True, "environment": "prod", "checks": 3, "smoke": what},
        actor=DEPLOYER,
    )


def copy_fix(p: Pipeline, base: str) -> Shipped:
    started = time.monotonic()
    p.story.section("Change 1 of 3: a UI copy fix in the patient portal")
    head = p.commit(sample.COPY_FIX)
    result = p.classify(base, head)
    p.story.why(
        "Only help copy changed: no clinical logic, PHI or infrastructure, so no tier above "
        "low holds. Low asks for unit tests and one approval from anyone but the author."
    )
    digest = p.register("portal", "COPY", base, head, retry=True)
    config = {env: p.config("portal", env, CONFIG["portal"]) for env in ENVIRONMENTS}

    p.story.step("Promote to dev: any classified build may run there")
    p.promote(digest, "dev", config["dev"])
    p.story.step("CI runs the portal's copy tests (pytest, JUnit): the low tier's only evidence")
    p.unit_tests(digest, "portal")
    p.story.step("Promote to staging: the gate checks the order and the unit tests")
    p.promote(digest, "staging", config["staging"], table=True)
    p.story.step(f"One approval for prod from anyone but {sample.AUTHOR}: bob, a teammate")
    p.approve(digest, BOB, "wording checked with the clinic")
    p.story.step("Promote to prod")
    p.promote(digest, "prod", config["prod"])
    _verify_in_prod(p, digest, "help page renders")
    seconds = time.monotonic() - started
    p.story.why(
        f"Low risk flows: commit to prod in {seconds:.1f} s with one piece of evidence and one "
        "approval; nothing a copy fix does not need."
    )
    return Shipped(result.tier, digest, head, seconds)


def infrastructure(p: Pipeline, base: str) -> Shipped:
    started = time.monotonic()
    p.story.section("Change 2 of 3: an infrastructure change to the orders service")
    head = p.commit(sample.INFRA)
    p.classify(base, head)
    p.story.why(
        "infra/** is the infrastructure signal: medium tier, which asks for unit and integration "
        "tests, a SAST scan, and the release manager's approval."
    )
    blocked = p.register("orders", "INFRA", base, head)
    config = {env: p.config("orders", env, CONFIG["orders"]) for env in ENVIRONMENTS}
    p.story.step("Promote to dev")
    p.promote(blocked, "dev", config["dev"])
    p.story.step("CI: unit tests, integration tests (pytest) and a bandit SAST scan (SARIF)")
    p.unit_tests(blocked, "orders")
    p.integration_tests(blocked)
    p.sast(blocked)
    p.story.why(
        "bandit reports B602, subprocess with shell=True, at error level in "
        "services/orders/tools/export.py: the SAST evidence is FAILED."
    )
    p.story.step("Promote to staging: the gate blocks and names the control")
    p.promote(blocked, "staging", config["staging"])
    p.story.why(
        "This digest stays in dev. Nothing is overridden: the code is fixed, and the fixed "
        "code is a new build with a new digest."
    )

    head = p.commit(sample.SAST_FIX)
    result = p.classify(base, head)
    digest = p.register("orders", "INFRA_FIX", base, head)
    p.story.step("Promote to dev, then the same three kinds of evidence")
    p.promote(digest, "dev", config["dev"])
    p.unit_tests(digest, "orders")
    p.integration_tests(digest)
    p.sast(digest)

    p.story.step("Promote to staging with a draft configuration holding a clear-text password")
    draft = p.config(
        "orders", "staging", {**CONFIG["orders"], "db_password": "winter-2026"}, "-draft"
    )
    p.promote(digest, "staging", draft)
    p.story.step("Promote to staging with the password as a secret reference")
    p.promote(digest, "staging", config["staging"], table=True)
    p.story.step("The medium tier needs one approval from the release manager")
    p.approve(digest, ALICE, "capacity plan for the winter peak reviewed")
    p.story.step("Promote to prod")
    p.promote(digest, "prod", config["prod"])
    _verify_in_prod(p, digest, "three replicas healthy")
    return Shipped(result.tier, digest, head, time.monotonic() - started, blocked)


def medication(p: Pipeline, base: str) -> Shipped:
    started = time.monotonic()
    p.story.section("Change 3 of 3: a medication-rule change that touches the patient model")
    head = p.commit(sample.MEDICATION_RULE)
    result = p.classify(base, head)
    p.story.why(
        "Clinical logic and PHI: the high tier. Six kinds of evidence, the privacy-review "
        "checklist because PHI is touched, and two approvers holding release-manager and "
        "clinical-safety."
    )
    digest = p.register("orders", "MEDS", base, head)
    config = {env: p.config("orders", env, CONFIG["orders"]) for env in ENVIRONMENTS}
    p.story.step("Promote to dev")
    p.promote(digest, "dev", config["dev"])

    p.story.step("CI produces the high tier's evidence with real tools")
    p.unit_tests(digest, "orders")
    p.integration_tests(digest)
    p.attest(digest, "contract-tests", p.reports.contract("meds-contract-tests"))
    p.sast(digest)
    p.story.why(
        "SCA: pip-audit needs its vulnerability service, which this machine cannot reach. The "
        "report below is written by the demo in pip-audit's JSON format from requirements.txt "
        "with no vulnerabilities; it STANDS IN for a real `pip-audit -r requirements.txt -f json`."
    )
    p.attest(digest, "sca", p.reports.sca_stand_in("meds-pip-audit"))
    p.attest(digest, "sbom", p.reports.sbom("meds-sbom"))

    p.story.step("The privacy officer reviews the PHI change; the review is generic JSON evidence")
    p.generic(
        digest,
        "privacy-review",
        {
            "passed": True,
            "reviewer": PRIYA,
            "scope": "services/orders/models/patient.py",
            "fields_added": "allergies",
            "minimum_necessary": True,
            "disclosure_change": False,
        },
        actor=PRIYA,
    )
    p.story.step("Promote to staging: every evidence control and the checklist, item by item")
    p.promote(digest, "staging", config["staging"], table=True)

    p.story.step(f"{sample.AUTHOR} wrote the change and tries to approve it")
    p.approve(digest, sample.AUTHOR, "tested it myself")
    p.story.step("alice, the release manager, approves")
    p.approve(digest, ALICE, "dose rules and tests reviewed")
    p.story.step("Late evidence: the nightly integration run in staging is attested after alice")
    p.integration_tests(digest, run="-nightly")
    p.gate(digest, "prod")
    p.story.why(
        "alice signed over the evidence set as it was. It has changed since, so her signature no "
        "longer counts: she must look at the new evidence and sign again."
    )
    p.story.step("alice and carol (clinical safety) approve the evidence as it now stands")
    p.approve(digest, ALICE, "re-reviewed with the nightly run")
    p.approve(digest, CAROL, "allergy refusal is clinically safe")
    p.story.step("Promote to prod: the gate allows")
    p.promote(digest, "prod", config["prod"])

    p.story.step("Is the release done? Completeness is computed from the ledger, not claimed")
    p.story.say(f"[dim]$ clearance release show {p.var(digest)}[/]")
    completeness_table(p.story, release_show(p.instance, digest))
    _verify_in_prod(p, digest, "order submission end to end")
    p.story.say(f"[dim]$ clearance release show {p.var(digest)}[/]")
    done = release_show(p.instance, digest)
    missing = ", ".join(name for name, ok, _ in done.items if not ok)
    p.story.say("[green]COMPLETE[/]" if done.complete else f"[red]INCOMPLETE[/]: {missing}")
    return Shipped(result.tier, digest, head, time.monotonic() - started)
