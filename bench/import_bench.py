"""Import benchmark: a generated persona CSV through the whole core (validate, then apply), twice.

Run from the project root: `python bench/import_bench.py [--rows N]`, with BENCH_DATABASE_URL set to a
PostgreSQL database to measure production's path (default: a temp SQLite file). The first run
creates every persona, the second updates them all (points added). Figures, not asserts.
"""
import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from read_bench import write_csv  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="import-bench-"))
    url = os.environ.get("BENCH_DATABASE_URL") or f"sqlite:///{workdir / 'bench.db'}"

    from webapp.db import db, init_db
    from webapp.importer import flow
    from webapp.models import Import, MODELS
    from webapp.schema import init_schema
    from worker import tasks

    init_db(url)
    db.drop_tables(MODELS, safe=True, cascade=url.startswith("postgres"))
    init_schema()
    from webapp.accounts import create_account, create_user

    account = create_account("Bench")
    user = create_user("bench@example.com", "bench", account)
    path = write_csv(workdir / "personas.csv", args.rows)
    limits = flow.Limits(max_bytes=1 << 30, max_rows=5_000_000)
    print(f"database: {url.split('@')[-1]}; file: {args.rows:,} rows, {path.stat().st_size / 1e6:.1f} MB")
    for label in ("first run (creates)", "second run (updates)"):
        started = time.perf_counter()
        with open(path, "rb") as stream:
            upload = flow.start_upload(account, user, path.name, stream, limits)
        flow.mark_queued(upload, "validating")
        tasks.validate_import(upload.id, limits)
        validated = time.perf_counter()
        upload = Import.get_by_id(upload.id)
        flow.accept_terms(upload, user, None, "bench", False, False)
        flow.mark_queued(upload, "queued")
        tasks.apply_import(upload.id, limits)
        done = time.perf_counter()
        counts = Import.get_by_id(upload.id).counts
        print(f"{label}: upload+validate {validated - started:.1f}s ({args.rows / (validated - started):,.0f} rows/s), "
              f"apply {done - validated:.1f}s ({args.rows / (done - validated):,.0f} rows/s), "
              f"total {done - started:.1f}s ({args.rows / (done - started):,.0f} rows/s); {counts}")
    print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
