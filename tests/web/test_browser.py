"""End to end in real headless Chromium: sign in, review, sign; self-approval refused; search."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from clearance.usecases.releases import APPROVED, REFUSED
from tests.web.conftest import PASSWORDS, Site

SIGNATURE = re.compile(
    r"Alice Adams \(alice@example\.org\), approval, \d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC"
)


def sign_in(page: Any, site: Site, email: str, next_path: str = "/") -> None:
    page.goto(site.url + next_path)
    assert "/login" in page.url  # signed out: sent to the sign-in page first
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORDS[email])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(re.escape(site.url + next_path) + r"$"))


def open_release(page: Any, site: Site) -> None:
    page.get_by_role("link", name="portal.zip").click()
    page.wait_for_url(f"**/releases/{site.digest}")


class TestApprover:
    def test_signs_in_reviews_and_approves_with_password_reentry(
        self, page: Any, site: Site, tmp_path: Path
    ) -> None:
        sign_in(page, site, "alice@example.org")
        rows = page.locator("table.releases tbody tr")
        assert rows.count() == 2
        assert "orders-api" in rows.first.inner_text()  # newest first
        portal = rows.filter(has_text="portal.zip").inner_text()
        assert "low" in portal.lower() and "dev, staging" in portal and "CR-1042" in portal
        assert "blocked for prod" in portal and "needs: approvals" in portal
        open_release(page, site)

        # Review: the evidence summary, the evidence itself, the gate for prod.
        summary = page.locator("dl.summary").inner_text()
        assert "unit-tests: 3 of 3 passed (100.0%)" in summary
        assert "portal" in summary  # affected service
        assert "not recorded" in summary  # rollout scope and kill switch, honestly
        evidence = page.locator("section", has=page.locator("#evidence-title")).inner_text()
        assert "unit-tests" in evidence and "PASSED" in evidence
        assert "✗ blocked for prod" in page.locator("#gate").inner_text()

        form = page.locator("form#sign")
        shown = form.locator("[data-evidence-set-shown]").inner_text()
        assert shown.startswith("sha256:") and len(shown) == 71
        assert form.get_by_label("Environment", exact=True).input_value() == "prod"
        form.get_by_label("Approval: I approve this release").check()
        form.get_by_label("Reason (optional)").fill("copy reviewed with the clinical lead")
        form.get_by_label("Re-enter your password to sign").fill(PASSWORDS["alice@example.org"])
        form.get_by_role("button", name="Sign").click()
        page.wait_for_url("**signed=*")

        banner = page.get_by_role("status").first.inner_text()
        assert SIGNATURE.search(banner) and "for prod" in banner
        approvals = page.locator("#approvals table").inner_text()
        assert SIGNATURE.search(approvals)
        assert "bound to the current evidence" in approvals
        assert "✓ allowed to prod" in page.locator("#gate").inner_text()
        ledger = page.locator("section", has=page.locator("#ledger-title")).inner_text()
        assert "approval.signed" in ledger and "✓ included in checkpoint" in ledger
        shot = tmp_path / "release-page.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000

        signed = site.entries(APPROVED)
        assert len(signed) == 1
        approval = signed[0]
        assert approval.actor == "alice@example.org" and approval.subject == site.digest
        assert approval.data["env"] == "prod" and approval.data["meaning"] == "approval"
        assert approval.data["evidence_set"] == shown
        assert approval.data["reason"] == "copy reviewed with the clinical lead"


class TestAuthor:
    def test_own_approval_is_refused_in_the_page_and_nothing_is_signed(
        self, page: Any, site: Site
    ) -> None:
        sign_in(page, site, "dana@example.org")
        open_release(page, site)
        before = len(site.entries())
        form = page.locator("form#sign")
        form.get_by_label("Re-enter your password to sign").fill(PASSWORDS["dana@example.org"])
        form.get_by_role("button", name="Sign").click()

        alert = page.get_by_role("alert").inner_text()
        assert "dana@example.org authored this change and cannot approve it" in alert
        assert "Nothing was signed" in alert
        assert "No approvals signed yet." in page.locator("#approvals").inner_text()
        assert site.entries(APPROVED) == []
        after = site.entries()
        assert len(after) == before + 1
        refusal = after[-1]
        assert refusal.kind == REFUSED and refusal.actor == "dana@example.org"
        assert "authored this change" in refusal.data["reason"]


class TestAuditor:
    def test_searches_by_change_request_and_reads_without_forms(
        self, page: Any, site: Site
    ) -> None:
        sign_in(page, site, "audrey@example.org", "/search")
        page.get_by_label("Change request").fill("cr-1042")
        page.get_by_role("button", name="Search").click()
        page.wait_for_url("**/search?*change_request=cr-1042*")
        assert page.get_by_role("heading", name="1 result").is_visible()
        results = page.locator("main table").inner_text()
        assert "portal.zip" in results and "CR-1042" in results and "orders-api" not in results
        page.get_by_role("link", name="portal.zip").click()
        page.wait_for_url(f"**/releases/{site.digest}")
        assert page.locator("form#sign").count() == 0
        assert "Your role (auditor) can read this release but not sign" in page.inner_text("main")

        page.get_by_role("navigation").get_by_role("link", name="Ledger").click()
        page.get_by_role("button", name="Verify now").click()
        assert "OK" in page.get_by_role("status").inner_text()
