"""Personas Import: the Flask app factory.

Flask is imported inside create_app only: importing any module of the package (the import core a worker
runs, the models) goes through this file, and must not load the web framework.
"""
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from webapp import config, logs
from webapp.config import ROOT, Settings, load_config
from webapp.db import db, init_db

if TYPE_CHECKING:
    from flask import Flask

__all__ = ["ROOT", "create_app"]


def create_app(test_config: dict | None = None) -> "Flask":
    """Build the app: settings, database, blueprints, security headers, error pages."""
    from flask import Flask
    from htmx_flask import Htmx
    from werkzeug.middleware.proxy_fix import ProxyFix

    from webapp.wrappers import Request

    app = Flask(
        __name__,
        instance_path=str(ROOT / "instance"),
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
    )
    logs.install()  # no customer value in any log line: exception messages withheld, no query strings
    instance = Path((test_config or {}).get("INSTANCE_PATH", app.instance_path))
    settings = Settings.from_env(instance)
    app.config.update(load_config(instance, settings))
    if test_config:
        app.config.update(test_config)
    # The process's settings are the app's (a test's config included): the core and the in-process jobs read them.
    config.install(replace(settings, database_url=app.config["DATABASE_URL"], redis_url=app.config["REDIS_URL"],
                           max_upload_mb=app.config["MAX_UPLOAD_MB"], max_rows=app.config["MAX_ROWS"]))
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

    from webapp import errors, ratelimit, security, templating
    from webapp.views import audiences, auth, imports, personas, wizard

    auth.init_app(app)
    security.init_app(app)
    ratelimit.init_app(app)
    errors.init_app(app)
    templating.init_app(app)
    app.register_blueprint(auth.bp)
    app.register_blueprint(personas.bp)
    app.register_blueprint(audiences.bp)
    app.register_blueprint(wizard.bp)
    app.register_blueprint(imports.bp)

    # The composition root: the one place the web package names the worker. Views and commands take the
    # enqueue function from here and hand it to the core's services (webapp.importer.service).
    from worker.queue import enqueue, start_reaper

    app.extensions["enqueue"] = enqueue
    if app.config["IN_PROCESS_REAPER"] and not app.config["REDIS_URL"]:
        # The embedded runner has no RQ worker to resume an import the last server stopped mid-way.
        start_reaper(None)

    from webapp.cli import register_commands

    register_commands(app)
    return app
