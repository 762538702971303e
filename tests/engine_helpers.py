"""Helpers for tests of the import core: write a file, run an import end to end, read the results.

`run_import` goes through the same steps the wizard and the CLI do (upload, mapping, validation
job, terms, queue, apply job), synchronously in the test thread, so a test reads like the rule it
checks. `import_via_cli` drives the `import` command and returns its parsed JSON.
"""
import csv
import json
from dataclasses import replace

from webapp import config
from webapp.importer import engine, flow, service
from webapp.importer.export import export_personas
from webapp.models import AuditEntry, Import, ImportProblem
from worker import tasks

LIMITS = flow.Limits(max_bytes=10 * 1024 * 1024, max_rows=100_000)
TERMS = "terms-test-1"
IP = "203.0.113.7"
COUNT_KEYS = ("created", "updated", "unchanged", "rejected", "warnings")


def run_now(kind: str, import_id: int) -> bool:
    """The enqueue function of the tests that validate in their own thread: the dry run runs at once."""
    assert kind == "validate", kind
    tasks.validate_import(import_id, LIMITS)
    return True


def run_later(_kind: str, _import_id: int) -> bool:
    """The enqueue function of the tests that start the queued job themselves (apply_queued)."""
    return True


TUNING = ("chunk_rows", "apply_workers", "stale_seconds", "sweep_seconds", "fault_kill_after_chunks")


def tune(monkeypatch, **variables):
    """Set IMPORT_* tuning variables for one test: in the environment (for the worker processes it starts)
    and in this process's settings, which were read from the environment once."""
    for name, value in variables.items():
        monkeypatch.setenv(name, str(value))
    fresh = config.Settings.from_env()
    monkeypatch.setattr(config, "_installed", replace(config.current(), **{k: getattr(fresh, k) for k in TUNING}))


def write_csv(tmp_path, rows, name="people.csv"):
    """Write rows (the header first) as a UTF-8 CSV file under tmp_path; returns its path."""
    path = tmp_path / name
    with open(path, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows)
    return path


def prepare_import(account, user, path, *, mapping=None, overrides=None, accept=True, opt_in_sms=False,
                   opt_in_email=False, ip=IP, terms=TERMS) -> Import:
    """Upload, map, validate (the dry run) and, when accept, accept the terms and queue the import."""
    with open(path, "rb") as stream:
        upload = service.start_upload(account, user, path.name, stream, LIMITS)
    chosen = dict(mapping) if mapping is not None else {**upload.mapping, **(overrides or {})}
    errors = service.confirm_mapping(upload, chosen, run_now)
    assert not errors, errors
    upload = Import.get_by_id(upload.id)
    assert upload.status == "validated", (upload.status, upload.error_message)
    if accept:
        service.submit(upload, user, ip, terms, opt_in_sms, opt_in_email, run_later)
    return upload


def apply_queued(upload: Import, chunk_rows=None, after_chunk=None) -> Import:
    """Apply a queued import: through the worker job, or (chunk_rows given) claim + engine.apply."""
    if chunk_rows is None and after_chunk is None:
        tasks.apply_import(upload.id, LIMITS)
    else:
        lease = engine.claim(upload.id, ("queued",), "running")
        assert lease is not None
        engine.apply(upload.id, lease, chunk_rows=chunk_rows, after_chunk=after_chunk)
    return Import.get_by_id(upload.id)


def run_import(account, user, path, *, chunk_rows=None, **options) -> Import:
    """Run one import end to end and return the finished Import (asserted completed)."""
    upload = apply_queued(prepare_import(account, user, path, **options), chunk_rows=chunk_rows)
    assert upload.status == "completed", (upload.status, upload.error_message)
    return upload


def import_rows(account, user, tmp_path, rows, name="people.csv", **options) -> Import:
    """write_csv + run_import."""
    return run_import(account, user, write_csv(tmp_path, rows, name), **options)


def counts(upload: Import) -> dict:
    """The import's result counts (missing ones as 0)."""
    return {key: upload.counts.get(key, 0) for key in COUNT_KEYS}


def review_counts(upload: Import) -> dict:
    """The dry run's counts, for the opt-in-all boxes as the Review step ticked them."""
    counts = flow.review_counts(upload, upload.options.get("opt_in_sms"), upload.options.get("opt_in_email"))
    return {key: counts[key] for key in COUNT_KEYS}


def personas(account) -> list[dict]:
    """The account's personas as the CLI exports them, in the order of their keys.

    (Ids follow no file order: an apply's units of independent rows run two at a time.)
    """
    return by_key(export_personas(account.id))


def by_key(found: list[dict]) -> list[dict]:
    """Personas ordered by email, then phone (a missing key last)."""
    return sorted(found, key=lambda p: (p["email"] is None, p["email"] or "", p["phone"] is None, p["phone"] or ""))


def persona_by(account, **key) -> dict:
    """The one exported persona with these values (e.g. email="a@example.com")."""
    found = [p for p in personas(account) if all(p[k] == v for k, v in key.items())]
    assert len(found) == 1, (key, found)
    return found[0]


def audit(upload: Import) -> list[AuditEntry]:
    """The import's audit entries, in row order."""
    return list(AuditEntry.select().where(AuditEntry.import_id == upload.id).order_by(AuditEntry.row))


def problems(upload: Import, severity=None) -> list[dict]:
    """The import's problems from parsing and applying (not the dry run's copies), in row order."""
    query = ImportProblem.select().where((ImportProblem.upload == upload.id)
                                         & ImportProblem.source.in_(["parse", "apply"]))
    if severity:
        query = query.where(ImportProblem.severity == severity)
    return [{"row": p.line, "column": p.column_name, "value": p.value, "reason": p.reason, "severity": p.severity}
            for p in query.order_by(ImportProblem.line, ImportProblem.id)]


def rejected_lines(upload: Import) -> set[int]:
    """Line numbers of the rows the import rejected."""
    return {p["row"] for p in problems(upload, "error")}


def invoke(runner, *args):
    """Run a `personas` command; returns (exit code, parsed JSON of its output or None)."""
    result = runner.invoke(args=[str(a) for a in args])
    try:
        data = json.loads(result.output)
    except ValueError:
        data = None
    return result.exit_code, data, result


def import_via_cli(runner, path, *args, account="Alpha", user="owner-a@example.com", accept=True, code=0):
    """`personas import FILE ...` with --accept-terms by default; asserts the exit code, returns the JSON."""
    extra = ["--accept-terms"] if accept else []
    exit_code, data, result = invoke(runner, "import", path, "--account", account, "--user", user, *extra, *args)
    assert exit_code == code, (exit_code, result.output, result.exception)
    assert data is not None, result.output
    return data
