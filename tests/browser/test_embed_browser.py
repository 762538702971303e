"""The wizard inside another site's iframe: shown and usable for an allowed origin, refused for any other.

The parent page is served from http://localhost:<port>, the app from http://127.0.0.1:<port>: two sites,
so the frame is cross-site and its session cookie is a third-party cookie. This Chromium blocks
unpartitioned third-party cookies, so signing in inside the frame works only with the
SameSite=None; Secure; Partitioned cookie the app sets when embedding is on.
"""
import re

import pytest

pytest.importorskip("playwright.sync_api")
from playwright.sync_api import expect  # noqa: E402

from tests.browser.conftest import sign_in  # noqa: E402
from tests.browser.helpers import people_csv  # noqa: E402

WIZARD_HEADING = "Bulk Import Personas"


def embedded_app(live_factory, parent_site, allowed: bool):
    """The app framable by the parent site (allowed) or by another origin only; the parent points at it."""
    other = "https://dashboard.example.com"
    ancestors = ["'self'", parent_site.origin if allowed else other]
    live = live_factory(FRAME_ANCESTORS=ancestors, EMBEDDING=True)
    parent_site.app_url = live.url
    return live


def test_wizard_works_in_iframe_of_allowed_origin(live_factory, parent_site, new_context, shot, tmp_path):
    live = embedded_app(live_factory, parent_site, allowed=True)
    context, page, _problems = new_context()
    page.goto(parent_site.origin + "/")
    frame = page.frame_locator("iframe#personas")

    # Not signed in: the frame shows the sign-in form (embed layout: no app navigation).
    expect(frame.get_by_role("button", name="Sign in")).to_be_visible()
    expect(frame.locator(".site-header")).to_have_count(0)
    shot(page, "01-sign-in-in-frame")
    sign_in(page, live.email, live.password, frame=frame)

    # Back at the wizard, still inside the frame.
    expect(frame.get_by_role("heading", name=WIZARD_HEADING)).to_be_visible()
    expect(frame.get_by_label("Upload File")).to_be_attached()
    expect(frame.locator("body.layout-embed")).to_have_count(1)
    app_frame = next(f for f in page.frames if f.url.startswith(live.url))
    assert re.search(r"/imports/new$", app_frame.url), app_frame.url
    shot(page, "02-upload-step-in-frame")

    # The session cookie is a partitioned third-party cookie (CHIPS), keyed by the parent's site.
    cookies = [c for c in context.cookies() if c["domain"] == "127.0.0.1"]
    assert cookies, context.cookies()
    session = cookies[0]
    assert session["sameSite"] == "None" and session["secure"] and session["httpOnly"], session
    if "partitionKey" in session:  # Playwright >= 1.51 reports it
        assert session["partitionKey"].startswith("http://localhost"), session

    # HTMX posts (multipart, CSRF header) work from inside the frame: upload a file to step 2.
    csv_path = people_csv(tmp_path / "framed.csv", 3)
    frame.get_by_label("Upload File").set_input_files(csv_path)
    expect(frame.get_by_role("heading", name=re.compile("Uploaded: framed.csv"))).to_be_visible()
    expect(frame.locator("[data-row-count]")).to_contain_text("3 customer rows")
    assert re.search(r"/imports/\d+/uploaded$", app_frame.url), app_frame.url
    shot(page, "03-uploaded-in-frame")


@pytest.mark.allow_csp_reports
def test_iframe_of_other_origin_is_refused(live_factory, parent_site, new_context, shot):
    live = embedded_app(live_factory, parent_site, allowed=False)
    context, page, problems = new_context()
    page.goto(parent_site.origin + "/")
    expect(page.get_by_role("heading", name="Partner dashboard")).to_be_visible()
    # Chromium reports the refusal on the console and shows its error page in the frame.
    page.wait_for_timeout(1000)
    shot(page, "01-refused-frame")
    frames = [f for f in page.frames if f != page.main_frame]
    assert len(frames) == 1
    content = frames[0].content()
    assert WIZARD_HEADING not in content and "Sign in" not in content and "csrf_token" not in content
    assert any("frame-ancestors" in message for message in problems.csp), problems.csp

    # The same page, opened directly (top level), works.
    page.goto(live.url + "/login")
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
