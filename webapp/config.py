"""Settings from the environment, with the embedded defaults `make run` needs."""
import os
import secrets
from pathlib import Path


DEFAULT_UPLOAD_MB = "512"


def _secret_key(instance: Path) -> str:
    """SECRET_KEY from the environment, else one generated once into instance/."""
    if os.environ.get("SECRET_KEY"):
        return os.environ["SECRET_KEY"]
    path = instance / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()


def load_config(instance: Path) -> dict:
    """The app's settings: environment first, defaults for a laptop otherwise."""
    instance.mkdir(parents=True, exist_ok=True)
    frame_ancestors = os.environ.get("FRAME_ANCESTORS", "'self'").split()
    return {
        "SECRET_KEY": _secret_key(instance),
        "DATABASE_URL": os.environ.get("DATABASE_URL", f"sqlite:///{instance / 'personas.db'}"),
        "REDIS_URL": os.environ.get("REDIS_URL") or None,
        # 512 MB (HubSpot's per-file limit) holds the 2,000,000 rows MAX_ROWS allows: ~110 MB per million.
        "MAX_UPLOAD_MB": int(os.environ.get("MAX_UPLOAD_MB", DEFAULT_UPLOAD_MB)),
        "MAX_ROWS": int(os.environ.get("MAX_ROWS", "2000000")),
        # A workbook whose sheets unpack to more than this is read by a background job, not the upload request.
        "READ_NOW_MB": float(os.environ.get("READ_NOW_MB", "64")),
        "FRAME_ANCESTORS": frame_ancestors,
        # Embedding from another site needs cross-site cookies (SameSite=None; Secure; Partitioned).
        "EMBEDDING": any(origin != "'self'" for origin in frame_ancestors),
        "IN_PROCESS_REAPER": os.environ.get("IN_PROCESS_REAPER") == "1",
        "PROXY_HOPS": int(os.environ.get("PROXY_HOPS", "0")),
        "TERMS_VERSION": os.environ.get("TERMS_VERSION", "2026-11"),
        # Uploads per user; beyond it 429 (webapp/ratelimit.py). Room for a busy person, not for a script.
        "UPLOAD_RATE_LIMIT": os.environ.get("UPLOAD_RATE_LIMIT", "10/minute"),
        # Failed sign-ins per email and per client address; beyond, 429 even for the right password until
        # the window ends. An office behind one address holds several people mistyping, not a password guesser.
        "SIGN_IN_RATE_LIMIT_ACCOUNT": os.environ.get("SIGN_IN_RATE_LIMIT_ACCOUNT", "10/15 minutes"),
        "SIGN_IN_RATE_LIMIT_ADDRESS": os.environ.get("SIGN_IN_RATE_LIMIT_ADDRESS", "50/15 minutes"),
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
    }


def upload_limits(settings) -> "Limits":
    """The upload limits from settings holding MAX_UPLOAD_MB, MAX_ROWS and optionally READ_NOW_MB (the app's config)."""
    from webapp.importer.flow import READ_NOW_BYTES, Limits

    read_now = settings.get("READ_NOW_MB")
    return Limits(max_bytes=int(settings["MAX_UPLOAD_MB"]) * 1024 * 1024, max_rows=int(settings["MAX_ROWS"]),
                  read_now_bytes=int(float(read_now) * 1024 * 1024) if read_now is not None else READ_NOW_BYTES)


def limits_from_env() -> "Limits":
    """Upload limits for processes without a Flask app (RQ workers)."""
    return upload_limits({"MAX_UPLOAD_MB": os.environ.get("MAX_UPLOAD_MB", DEFAULT_UPLOAD_MB),
                          "MAX_ROWS": os.environ.get("MAX_ROWS", "2000000")})
