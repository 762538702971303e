"""Personas Import: the Flask app factory."""
from pathlib import Path

from flask import Flask
from htmx_flask import Htmx
from werkzeug.middleware.proxy_fix import ProxyFix

from webapp import logs
from webapp.config import load_config
from webapp.db import db, init_db
from webapp.wrappers import Request

ROOT = Path(__file__).resolve().parent.parent


def create_app(test_config: dict | None = None) -> Flask:
    """Build the app: settings, database, blueprints, security headers, error pages."""
    app = Flask(
        __name__,
        instance_path=str(ROOT / "instance"),
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
    )
    logs.install()  # no customer value in any log line: exception messages withheld, no query strings
    instance = Path((test_config or {}).get("INSTANCE_PATH", app.instance_path))
    app.config.update(load_config(instance))
    if test_config:
        app.config.update(test_config)
    app.config["MAX_CONTENT_LENGTH"] = app.config["MAX_UPLOAD_MB"] * 1024 * 1024 + 64 * 1024
    if app.config["PROXY_HOPS"]:
        # Behind a TLS-terminating proxy: trust its X-Forwarded-Proto so Secure cookies are set, and its
        # X-Forwarded-Host so posts from the public origin are recognized as our own (security.check_origin).
        hops = app.config["PROXY_HOPS"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)
    Htmx(app)
    app.request_class = Request  # htmx_flask's, and a NUL in the query or a form field is a 400 (wrappers.py)
    init_db(app.config["DATABASE_URL"])

    @app.before_request
    def _connect():
        db.connect(reuse_if_open=True)

    @app.teardown_appcontext
    def _close(_exc):
        if not db.is_closed():
            db.close()

    from webapp import audiences, auth, errors, imports, personas, ratelimit, security, wizard, words

    auth.init_app(app)
    security.init_app(app)
    ratelimit.init_app(app)
    errors.init_app(app)
    words.init_app(app)
    app.register_blueprint(auth.bp)
    app.register_blueprint(personas.bp)
    app.register_blueprint(audiences.bp)
    app.register_blueprint(wizard.bp)
    app.register_blueprint(imports.bp)

    if app.config["IN_PROCESS_REAPER"] and not app.config["REDIS_URL"]:
        # The embedded runner has no RQ worker to resume an import the last server stopped mid-way.
        from worker.queue import start_reaper

        start_reaper(None)

    from webapp.cli import register_commands

    register_commands(app)
    return app
