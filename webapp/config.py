"""Settings: read once from the environment into one object, which the app, the worker and the CLI all build.

Nothing else reads os.environ for a setting: the app factory installs the Settings it built (install()),
a bare `rq worker` builds them on first use (current()), and the core asks current() for its tuning.
"""
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_UPLOAD_MB = 512  # HubSpot's per-file limit; it holds the 2,000,000 rows MAX_ROWS allows: ~110 MB per million
DEFAULT_MAX_ROWS = 2_000_000
DEFAULT_CHUNK_ROWS = 25_000  # two units of the apply in flight stay in 400 MB
# A workbook whose sheets and shared strings unpack to more than this is read by the background job: calamine
# reads about 60 MB of sheet XML a second, openpyxl (beyond calamine's budget) 8 MB; the request must stay short.
DEFAULT_READ_NOW_MB = 64.0
READ_NOW_BYTES = int(DEFAULT_READ_NOW_MB * 1024 * 1024)


@dataclass(frozen=True)
class Limits:
    """The size limits uploads are held to, and how much of a workbook the upload request reads itself."""

    max_bytes: int
    max_rows: int
    read_now_bytes: int = READ_NOW_BYTES


def _number(environ, name: str, default, kind=int):
    """A numeric variable, its default when unset or empty."""
    value = environ.get(name)
    return kind(value) if value else default


@dataclass(frozen=True)
class Settings:
    """Every setting of the product, from the environment, with the embedded defaults `make run` needs."""

    instance: Path
    database_url: str
    redis_url: str | None = None
    secret_key: str | None = None  # None: generated once into the instance folder (the app only needs it)
    max_upload_mb: int = DEFAULT_UPLOAD_MB
    max_rows: int = DEFAULT_MAX_ROWS
    frame_ancestors: tuple[str, ...] = ("'self'",)
    in_process_reaper: bool = False
    proxy_hops: int = 0
    terms_version: str = "2026-11"
    # Uploads per user; beyond it 429 (webapp/ratelimit.py). Room for a busy person, not for a script.
    upload_rate_limit: str = "10/minute"
    # Failed sign-ins per email and per client address; beyond, 429 even for the right password until
    # the window ends. An office behind one address holds several people mistyping, not a password guesser.
    sign_in_rate_limit_account: str = "10/15 minutes"
    sign_in_rate_limit_address: str = "50/15 minutes"
    read_now_mb: float = DEFAULT_READ_NOW_MB  # READ_NOW_MB: a larger workbook is read by a background job
    chunk_rows: int = DEFAULT_CHUNK_ROWS  # IMPORT_CHUNK_ROWS: rows per unit of the apply
    apply_workers: int | None = None  # IMPORT_APPLY_WORKERS; None: two, or one per core below two
    stale_seconds: float = 60.0  # IMPORT_STALE_SECONDS: a run silent this long is taken to be dead
    sweep_seconds: float = 30.0  # IMPORT_SWEEP_SECONDS: how often the reaper looks for dead runs
    fault_kill_after_chunks: int = 0  # IMPORT_FAULT_KILL_AFTER_CHUNKS: fault-injection tests only

    @classmethod
    def from_env(cls, instance: Path | None = None, environ=None) -> "Settings":
        """The settings the environment gives (os.environ unless told), for this instance folder."""
        env = os.environ if environ is None else environ
        instance = Path(instance) if instance is not None else ROOT / "instance"
        return cls(
            instance=instance,
            database_url=env.get("DATABASE_URL") or f"sqlite:///{instance / 'personas.db'}",
            redis_url=env.get("REDIS_URL") or None,
            secret_key=env.get("SECRET_KEY") or None,
            max_upload_mb=_number(env, "MAX_UPLOAD_MB", DEFAULT_UPLOAD_MB),
            max_rows=_number(env, "MAX_ROWS", DEFAULT_MAX_ROWS),
            frame_ancestors=tuple(env.get("FRAME_ANCESTORS", "'self'").split()),
            in_process_reaper=env.get("IN_PROCESS_REAPER") == "1",
            proxy_hops=_number(env, "PROXY_HOPS", 0),
            terms_version=env.get("TERMS_VERSION", "2026-11"),
            upload_rate_limit=env.get("UPLOAD_RATE_LIMIT", "10/minute"),
            sign_in_rate_limit_account=env.get("SIGN_IN_RATE_LIMIT_ACCOUNT", "10/15 minutes"),
            sign_in_rate_limit_address=env.get("SIGN_IN_RATE_LIMIT_ADDRESS", "50/15 minutes"),
            read_now_mb=_number(env, "READ_NOW_MB", DEFAULT_READ_NOW_MB, float),
            chunk_rows=_number(env, "IMPORT_CHUNK_ROWS", DEFAULT_CHUNK_ROWS),
            apply_workers=_number(env, "IMPORT_APPLY_WORKERS", None),
            stale_seconds=_number(env, "IMPORT_STALE_SECONDS", 60.0, float),
            sweep_seconds=_number(env, "IMPORT_SWEEP_SECONDS", 30.0, float),
            fault_kill_after_chunks=_number(env, "IMPORT_FAULT_KILL_AFTER_CHUNKS", 0),
        )

    @property
    def limits(self) -> Limits:
        """The upload limits."""
        return upload_limits({"MAX_UPLOAD_MB": self.max_upload_mb, "MAX_ROWS": self.max_rows,
                              "READ_NOW_MB": self.read_now_mb})

    def as_config(self) -> dict:
        """The settings as the Flask app's config keys."""
        return {
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis_url,
            "MAX_UPLOAD_MB": self.max_upload_mb,
            "MAX_ROWS": self.max_rows,
            "FRAME_ANCESTORS": list(self.frame_ancestors),
            # Embedding from another site needs cross-site cookies (SameSite=None; Secure; Partitioned).
            "EMBEDDING": any(origin != "'self'" for origin in self.frame_ancestors),
            "IN_PROCESS_REAPER": self.in_process_reaper,
            "PROXY_HOPS": self.proxy_hops,
            "TERMS_VERSION": self.terms_version,
            "UPLOAD_RATE_LIMIT": self.upload_rate_limit,
            "SIGN_IN_RATE_LIMIT_ACCOUNT": self.sign_in_rate_limit_account,
            "SIGN_IN_RATE_LIMIT_ADDRESS": self.sign_in_rate_limit_address,
            "READ_NOW_MB": self.read_now_mb,
        }


_installed: Settings | None = None


def install(settings: Settings) -> Settings:
    """Make these the process's settings (the app factory, and a worker, at start-up)."""
    global _installed
    _installed = settings
    return settings


def current() -> Settings:
    """The process's settings: the ones installed, else read from the environment once."""
    return _installed or install(Settings.from_env())


def _secret_key(settings: Settings) -> str:
    """SECRET_KEY from the environment, else one generated once into instance/."""
    if settings.secret_key:
        return settings.secret_key
    path = settings.instance / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()


def load_config(instance: Path, settings: Settings | None = None) -> dict:
    """The app's config: the settings (environment first, defaults for a laptop otherwise) and its secret key."""
    settings = settings or Settings.from_env(instance)
    settings.instance.mkdir(parents=True, exist_ok=True)
    return {**settings.as_config(), "SECRET_KEY": _secret_key(settings),
            "SESSION_COOKIE_HTTPONLY": True, "SESSION_COOKIE_SAMESITE": "Lax"}


def upload_limits(config) -> Limits:
    """The upload limits from a mapping holding MAX_UPLOAD_MB, MAX_ROWS and optionally READ_NOW_MB (the app's config)."""
    read_now = config.get("READ_NOW_MB")
    return Limits(max_bytes=int(config["MAX_UPLOAD_MB"]) * 1024 * 1024, max_rows=int(config["MAX_ROWS"]),
                  read_now_bytes=int(float(read_now) * 1024 * 1024) if read_now is not None else READ_NOW_BYTES)


def limits_from_env() -> Limits:
    """Upload limits as the environment sets them now (for processes without a Flask app)."""
    return Settings.from_env().limits
