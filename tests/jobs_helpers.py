"""Helpers for the job and fault-injection tests: generated files, imports ready to run, worker processes."""
import csv
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from tests.engine_helpers import by_key, run_later
from webapp.db import db
from webapp.importer import flow, service
from webapp.importer.export import export_personas
from webapp.models import AuditEntry, Import

ROOT = Path(__file__).resolve().parent.parent
LIMITS = flow.Limits(max_bytes=100 * 1024 * 1024, max_rows=2_000_000)
CHUNK = 100  # IMPORT_CHUNK_ROWS for the tests: many chunks from a small file


def write_csv(path: Path, rows: int, *, start: int = 0, distinct: int | None = None, names: bool = True) -> Path:
    """A CSV of `rows` rows over `distinct` customers (repeats add points across chunks), starting at customer `start`."""
    distinct = distinct or max(1, rows * 2 // 3)
    with open(path, "w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["Email", "Phone", "First Name", "Points"] if names else ["Email", "Points"])
        for i in range(rows):
            n = start + (i * 7) % distinct
            points = (i % 50) + 1
            if names:
                writer.writerow([f"c{n}@example.com", f"(212) 555-{n % 10000:04d}", f"Name{i}", points])
            else:
                writer.writerow([f"c{n}@example.com", points])
    return path


def file_points(path: Path) -> int:
    """The sum of the file's Points column."""
    with open(path, newline="") as source:
        return sum(int(row["Points"]) for row in csv.DictReader(source))


def validated_import(account, user, path: Path) -> Import:
    """An import of the file, validated in this process and queued (terms accepted): ready for a job."""
    upload = mapped_import(account, user, path, validate_now)
    upload = Import.get_by_id(upload.id)
    assert upload.status == "validated", upload.error_message
    service.submit(upload, user, None, "test-terms", False, False, run_later)
    return Import.get_by_id(upload.id)


def mapped_import(account, user, path: Path, enqueue) -> Import:
    """An import of the file with its columns as auto-matched, its dry run handed to enqueue."""
    with open(path, "rb") as stream:
        upload = service.start_upload(account, user, path.name, stream, LIMITS)
    assert service.confirm_mapping(upload, dict(upload.mapping), enqueue) == []
    return upload


def validate_now(kind: str, import_id: int) -> bool:
    """The enqueue function that runs the dry run at once, in this thread, with these tests' limits."""
    from worker import tasks

    assert kind == "validate", kind
    tasks.validate_import(import_id, LIMITS)
    return True


def row_of(import_id: int) -> dict:
    """Every column of the import row as it is now."""
    return Import.select().where(Import.id == import_id).dicts().get()


def audit_count(import_id: int) -> int:
    """Audit entries written by one import."""
    return AuditEntry.select().where(AuditEntry.import_id == import_id).count()


def changed_rows(upload: Import) -> int:
    """Rows that created or updated a persona: each must have exactly one audit entry."""
    return upload.counts.get("created", 0) + upload.counts.get("updated", 0)


def exported(account_id: int) -> list[dict]:
    """The account's export, read on a fresh connection state, in the order of its keys."""
    return by_key(export_personas(account_id))


def wait_for(predicate, timeout: float = 60.0, interval: float = 0.05, what: str = "condition"):
    """Poll predicate() until it returns something truthy; fail the test after timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")


def status_of(import_id: int) -> Import:
    """The import row as it is now (no transaction held open across polls)."""
    upload = Import.get_by_id(import_id)
    if not db.in_transaction():
        db.close()
    return upload


def finished(import_id: int):
    """The import row once completed or failed, else None (for wait_for)."""
    upload = status_of(import_id)
    return upload if upload.status in ("completed", "failed") else None


class Workers:
    """`personas worker` processes on the test's PostgreSQL and Redis; kill() SIGKILLs one with its children."""

    def __init__(self, database_url: str, redis_url: str, log_dir: Path):
        self.database_url, self.redis_url, self.log_dir = database_url, redis_url, log_dir
        self.procs: list[tuple[subprocess.Popen, str]] = []

    def start(self, **env) -> str:
        """Start a worker; returns its tag (every process of it carries the tag in its environment)."""
        tag = uuid.uuid4().hex
        environ = {**os.environ, "DATABASE_URL": self.database_url, "REDIS_URL": self.redis_url,
                   "IMPORT_CHUNK_ROWS": str(CHUNK), "IMPORT_STALE_SECONDS": "2", "IMPORT_SWEEP_SECONDS": "0.5",
                   "PERSONAS_TEST_WORKER": tag, "PYTHONUNBUFFERED": "1", **{k: str(v) for k, v in env.items()}}
        log = open(self.log_dir / f"worker-{tag}.log", "wb")
        proc = subprocess.Popen([str(Path(sys.executable).parent / "personas"), "worker"], cwd=ROOT, env=environ,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append((proc, tag))
        return tag

    def kill(self, tag: str) -> None:
        """SIGKILL every process of the worker tagged `tag` (the worker, its work horse, its scheduler)."""
        for pid in _pids_tagged(tag):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for proc, proc_tag in self.procs:
            if proc_tag == tag:
                proc.wait(timeout=10)

    def exited(self, tag: str) -> bool:
        """True once the worker's main process has ended (its scheduler may outlive it)."""
        return all(proc.poll() is not None for proc, proc_tag in self.procs if proc_tag == tag)

    def alive(self, tag: str) -> bool:
        """True while any process of the worker is alive."""
        return bool(_pids_tagged(tag))

    def stop_all(self) -> None:
        """Kill every worker this object started (the end of a test)."""
        for _proc, tag in self.procs:
            self.kill(tag)

    def logs(self) -> str:
        """All worker logs, for assertion messages."""
        return "\n".join(p.read_text(errors="replace")[-3000:] for p in sorted(self.log_dir.glob("worker-*.log")))


def _pids_tagged(tag: str) -> list[int]:
    needle = f"PERSONAS_TEST_WORKER={tag}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                stat = (entry / "stat").read_text()
                if stat[stat.rindex(")") + 2] != "Z":
                    found.append(int(entry.name))
        except OSError:
            continue
    return found


def hold(redis_url: str, key: str, timeout: float = 60.0) -> None:
    """An RQ job that keeps its worker busy until key is set in Redis (or timeout): the tests' blocker."""
    from redis import Redis

    connection = Redis.from_url(redis_url)
    wait_for(lambda: connection.exists(key), timeout=timeout, what=f"{key} in Redis")
