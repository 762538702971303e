"""Browser fixtures: Playwright drives Debian's Chromium against the app on a live server.

The app runs on a temp SQLite file with REDIS_URL unset, so imports run in the in-process
worker thread; werkzeug serves it on 127.0.0.1 (a random port) from a daemon thread. Every test
in this folder is marked `browser`, and the folder is skipped (with the reason) when Chromium,
htmx (make vendor) or the playwright package is missing.
"""
import os
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.conftest import _test_config
from tests.live_server import LiveServer
from webapp import create_app
from webapp.accounts import create_account, create_user
from webapp.db import db
from webapp.models import Membership
from webapp.schema import init_schema

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
CHROMIUM = "/usr/bin/chromium"
HTMX = ROOT / "static" / "vendor" / "htmx.min.js"
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
# Playwright's own browser download does not work here: Debian's Chromium, headless, no network chatter.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
TIMEOUT_MS = 15_000

OWNER_EMAIL, OWNER_PASSWORD = "owner@example.com", "pw-owner-browser"
ACCOUNT_NAME = "Green Leaf Dispensary"


def _skip_reason() -> str | None:
    if not os.access(CHROMIUM, os.X_OK):
        return f"Chromium is missing at {CHROMIUM} (`make browser` installs it with apt-get)"
    if not HTMX.is_file():
        return "static/vendor/htmx.min.js is missing (`make vendor` installs it from npm)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is missing (pip install -e '.[dev]')"
    return None


def pytest_collection_modifyitems(config, items):
    """Mark every test of this folder `browser`; skip them all, saying why, when a part is missing."""
    reason = _skip_reason()
    for item in items:
        if HERE not in Path(str(item.path)).resolve().parents:
            continue
        item.add_marker(pytest.mark.browser)
        if reason:
            item.add_marker(pytest.mark.skip(reason=reason))


# ---------------------------------------------------------------------------------------------- servers

@dataclass
class Live:
    """The running app: its URL, the Flask app, and the signed-in owner's account."""

    server: LiveServer
    account: object
    owner: object
    email: str = OWNER_EMAIL
    password: str = OWNER_PASSWORD

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def app(self):
        return self.server.app


def _wait_for_import_threads(seconds: float = 60) -> None:
    """Let in-process import jobs finish: a later test rebinds the database they write to."""
    deadline = time.monotonic() + seconds
    for thread in threading.enumerate():
        if re.fullmatch(r"(describe|import|validate)-\d+", thread.name):
            thread.join(max(0.0, deadline - time.monotonic()))


@pytest.fixture
def live_factory(tmp_path):
    """live_factory(**config) -> Live: the app on a fresh SQLite file, an owner account, a live server."""
    servers = []

    def make(**overrides) -> Live:
        config = _test_config(tmp_path, f"sqlite:///{tmp_path / 'browser.db'}", overrides)
        # Behave like production (error pages, not propagated exceptions).
        config["TESTING"] = False
        app = create_app(config)
        init_schema()
        account = create_account(ACCOUNT_NAME)
        owner = create_user(OWNER_EMAIL, OWNER_PASSWORD, account, Membership.OWNER)
        if not db.is_closed():
            db.close()  # the test thread's connection: server threads open their own
        server = LiveServer(app)
        servers.append(server)
        return Live(server, account, owner)

    yield make
    _wait_for_import_threads()
    for server in servers:
        server.stop()
    if not db.is_closed():
        db.close()


@pytest.fixture
def live(live_factory) -> Live:
    """The app on a live server at live.url (not embedded), with owner live.email / live.password."""
    return live_factory()


class ParentSite:
    """Another site (http://localhost:<port>) whose page embeds the app in an iframe."""

    def __init__(self):
        self.app_url = None  # set once the app's server is up
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                body = (
                    "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Partner dashboard</title>"
                    "<style>body{font-family:sans-serif;margin:1rem;background:#f4f1ea}"
                    "iframe{width:1200px;height:1100px;border:2px solid #6b5b3e;background:#fff}</style>"
                    "</head><body><h1>Partner dashboard</h1>"
                    f"<iframe id='personas' title='Personas Import' src='{site.app_url}{self.path_in_app()}'></iframe>"
                    "</body></html>"
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def path_in_app(self):
                # /embed?path=/imports/new -> the app page to show; default the wizard.
                match = re.search(r"[?&]path=([^&]+)", self.path)
                return match.group(1) if match else "/imports/new"

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        # localhost, not 127.0.0.1: another site than the app, so the iframe is cross-site.
        self.origin = f"http://localhost:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, name=f"parent-{self.port}", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def parent_site():
    """A parent page on http://localhost:<port>/ embedding the app (set parent_site.app_url first)."""
    site = ParentSite()
    yield site
    site.stop()


# ---------------------------------------------------------------------------------------------- browser

@pytest.fixture(scope="session")
def playwright_instance():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="session")
def browser(playwright_instance):
    """Debian's Chromium, headless, once per run."""
    browser = playwright_instance.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@dataclass
class Problems:
    """What the page reported: uncaught script errors and Content-Security-Policy violations fail a test."""

    page_errors: list = field(default_factory=list)
    csp: list = field(default_factory=list)
    console_errors: list = field(default_factory=list)

    def watch(self, page) -> None:
        page.on("pageerror", lambda error: self.page_errors.append(str(error)))
        page.on("console", self._console)

    def _console(self, message) -> None:
        if message.type != "error":
            return
        text = message.text
        if "Content Security Policy" in text or "Content-Security-Policy" in text:
            self.csp.append(text)
        else:  # e.g. "Failed to load resource: 422" for an inline validation error: expected
            self.console_errors.append(text)


@pytest.fixture
def new_context(browser, request):
    """new_context(base_url=...) -> (context, page, problems): a fresh profile, closed after the test."""
    contexts, all_problems = [], []

    def make(base_url: str | None = None, **options):
        context = browser.new_context(base_url=base_url, accept_downloads=True,
                                      viewport={"width": 1280, "height": 900}, **options)
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        page = context.new_page()
        problems = Problems()
        problems.watch(page)
        all_problems.append(problems)
        return context, page, problems

    yield make
    for context in contexts:
        context.close()
    allowed = request.node.get_closest_marker("allow_csp_reports")
    for problems in all_problems:
        assert not problems.page_errors, f"script errors in the page: {problems.page_errors}"
        if not allowed:
            assert not problems.csp, f"Content-Security-Policy violations: {problems.csp}"


def sign_in(page, email: str = OWNER_EMAIL, password: str = OWNER_PASSWORD, frame=None) -> None:
    """Fill and submit the real sign-in form (in the page, or in frame: a FrameLocator)."""
    where = frame or page
    where.get_by_label("Email").fill(email)
    where.get_by_label("Password").fill(password)
    where.get_by_role("button", name="Sign in").click()


@pytest.fixture
def page(live, new_context):
    """A fresh browser profile on the live app, signed in as the owner through /login."""
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT_MS)
    _context, page, _problems = new_context(base_url=live.url)
    page.goto("/login")
    sign_in(page, live.email, live.password)
    page.wait_for_url(re.compile(r"/personas"))
    return page


@pytest.fixture
def shot(request):
    """shot(page, "01-upload"): a full-page screenshot to test-artifacts/screenshots/<test>-<step>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    test = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name).strip("_")
    for old in SCREENSHOTS.glob(f"{test}-*.png"):  # an earlier run's shots of this test
        old.unlink()

    def take(page, step: str):
        path = SCREENSHOTS / f"{test}-{step}.png"
        # caret="initial": hiding the caret injects a <style> the CSP (rightly) refuses.
        page.screenshot(path=str(path), full_page=True, caret="initial")
        return path

    return take


def pytest_configure(config):
    config.addinivalue_line("markers", "allow_csp_reports: the test expects CSP violations (a refused frame)")
