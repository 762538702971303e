"""`make bench`: whole imports through the real queue and worker, measured against PostgreSQL COPY.

Run from the project root: `python bench/bench.py [--quick] [--only NAME] [--rows N] ...`.
Warning: it wipes the PostgreSQL database at BENCH_DATABASE_URL and flushes the Redis database at
BENCH_REDIS_URL. Figures, not asserts: these machines are noisy (±2x), compare the ratios.
See bench/README.md for what each line measures.
"""
import argparse
import json
import math
import os
import re
import resource
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

import data  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PERSONAS = str(Path(sys.executable).parent / "personas")
DEFAULT_DATABASE = "postgresql://postgres@127.0.0.1:5432/personas_bench"
DEFAULT_REDIS = "redis://127.0.0.1:6379/15"
ACCOUNT, USER, PASSWORD = "Bench", "bench@example.com", "bench-password"
POLL = 0.02  # seconds between looks at a child process or at the import's status

# The columnar core's bars (for 1M CSV rows, 100k XLSX rows, 50k XLS rows, a 100 MB upload).
FRESH_RATE, FRESH_COPY_RATIO, UPDATE_RATE, SQLITE_RATE = 40_000, 15, 25_000, 15_000
XLSX_RATE, XLS_RATE = 20_000, 25_000
RSS_LIMIT_MB, UPLOAD_SECONDS = 400, 1.0

MEASUREMENTS = ["copy", "upload", "dry-run", "fresh", "floor", "update", "xlsx-read", "xlsx", "xls-read", "xls", "sqlite"]
STATUS_ORDER = ["draft", "validating", "validated", "queued", "running", "completed"]


@dataclass
class ImportRun:
    """One `personas import` run: wall time, its JSON, the status timeline, memory figures."""

    seconds: float
    result: dict
    watcher: "StatusWatcher"
    cli_rss_mb: float
    tree_mb: float


class BenchError(Exception):
    """A measurement that could not finish; the message says where to look."""


@dataclass
class Line:
    """One line of the table."""

    label: str
    rows: int
    seconds: float
    rss_mb: float | None = None
    key: str = ""
    tree_mb: float | None = None

    @property
    def memory_mb(self) -> float | None:
        """What the memory target is judged on: the larger of peak RSS and the tree's peak PSS."""
        figures = [f for f in (self.rss_mb, self.tree_mb) if f is not None]
        return max(figures) if figures else None

    @property
    def rate(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else math.inf


# ---------------------------------------------------------------- child processes

def peak_rss_mb(usage) -> float:
    """ru_maxrss in MB (Linux reports KB)."""
    return usage.ru_maxrss / 1024


def reap(proc: subprocess.Popen, block: bool = True):
    """Wait for proc with wait4: (exit code, rusage), or None while it runs (block=False).

    wait4's rusage covers the child and every descendant it reaped, so a worker's figure includes
    the work horses it forked for the jobs.
    """
    pid, status, usage = os.wait4(proc.pid, 0 if block else os.WNOHANG)
    if pid == 0:
        return None
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, usage


def tree_pss_mb(root: int) -> float:
    """The summed PSS of a process and its descendants now: what they take together, shared pages once."""
    parents = {}
    for entry in os.scandir("/proc"):
        # Descendants have later pids (short of a pid wrap-around), which spares reading every process.
        if entry.name.isdigit() and int(entry.name) >= root:
            try:
                stat = Path(entry.path, "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rpartition(")")[2].split()[1])
    tree = {root}
    while grown := {pid for pid, ppid in parents.items() if ppid in tree} - tree:
        tree |= grown
    total_kb = 0
    for pid in tree:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                total_kb += next(int(line.split()[1]) for line in f if line.startswith("Pss:"))
        except (OSError, StopIteration):
            continue  # it ended meanwhile
    return total_kb / 1024


class TreeMemory(threading.Thread):
    """Samples tree_pss_mb(pid) every 100 ms and keeps the peak.

    wait4's peak RSS is the largest single process; the engine may run a parse process beside the
    job's work horse, and then the import takes their sum.
    """

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.peak_mb, self.stopped = pid, 0.0, threading.Event()
        self.start()

    def run(self):
        while not self.stopped.wait(0.1):
            self.peak_mb = max(self.peak_mb, tree_pss_mb(self.pid))

    def stop(self) -> float:
        """Stop sampling and return the peak in MB."""
        self.stopped.set()
        self.join()
        return self.peak_mb


def log_file(name: str):
    """A fresh log file under bench/out/logs/."""
    logs = data.OUT / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    return open(logs / name, "w")


def personas(args: list[str], env: dict) -> str:
    """Run a `personas` command to its end; its output, or BenchError with it."""
    done = subprocess.run([PERSONAS, *args], env=env, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise BenchError(f"personas {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


def python_json(args: list[str], env: dict) -> dict:
    """Run this script's helper mode in a fresh interpreter and return the JSON it prints last."""
    done = subprocess.run([sys.executable, __file__, *args], env=env, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise BenchError(f"{' '.join(args[:2])} failed:\n{done.stdout[-2000:]}{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------- databases

def pg_connect(url: str):
    """An autocommit psycopg2 connection."""
    import psycopg2

    conn = psycopg2.connect(url)
    conn.autocommit = True
    return conn


def ensure_database(url: str) -> None:
    """Create the bench database when it does not exist yet."""
    import psycopg2

    try:
        pg_connect(url).close()
        return
    except psycopg2.OperationalError as error:
        if "does not exist" not in str(error):
            raise BenchError(f"Cannot reach PostgreSQL at {url}: {error}") from error
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    conn = pg_connect(urlunsplit(parts._replace(path="/postgres")))
    with conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    conn.close()
    print(f"created database {name}", flush=True)


def wipe_postgres(url: str) -> None:
    """Drop every table of the bench database (its public schema)."""
    conn = pg_connect(url)
    with conn.cursor() as cur:
        cur.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        tables = [name for (name,) in cur.fetchall()]
        if tables:
            cur.execute("DROP TABLE " + ", ".join(f'"{t}"' for t in tables) + " CASCADE")
    conn.close()


def latest_status(url: str):
    """A function returning the status of the newest import started after this call (None before it commits)."""
    if url.startswith("sqlite"):
        conn, mark = sqlite3.connect(url.removeprefix("sqlite:///"), timeout=30, check_same_thread=False), "?"
    else:
        conn, mark = pg_connect(url), "%s"

    def fetch(query: str, *params):
        cur = conn.cursor()
        cur.execute(query, params)
        return cur.fetchone()

    # Imports of earlier runs stay in the database (the update run follows the fresh one).
    (before,) = fetch("SELECT coalesce(max(id), 0) FROM imports")

    def status():
        row = fetch(f"SELECT status FROM imports WHERE id > {mark} ORDER BY id DESC LIMIT 1", before)
        return row[0] if row else None

    status.close = conn.close
    return status


class StatusWatcher(threading.Thread):
    """Notes when the import's status is first seen at each step, polling its row."""

    def __init__(self, url: str):
        super().__init__(daemon=True)
        self.status, self.seen, self.stopped = latest_status(url), {}, threading.Event()
        self.started = time.perf_counter()  # reset when the CLI starts

    def run(self):
        while not self.stopped.is_set():
            status = self.status()
            if status is not None:
                self.seen.setdefault(status, time.perf_counter())
            time.sleep(POLL)

    def stop(self):
        self.stopped.set()
        self.join()
        self.status.close()

    def reached(self, status: str) -> float | None:
        """When the import was first seen at this step or a later one (a short step can slip between polls)."""
        later = STATUS_ORDER[STATUS_ORDER.index(status):]
        times = [self.seen[s] for s in later if s in self.seen]
        return min(times) if times else None


# ---------------------------------------------------------------- the bench

class Bench:
    """Runs the measurements in order and collects the table's lines."""

    def __init__(self, args):
        self.args = args
        self.pg = os.environ.get("BENCH_DATABASE_URL") or DEFAULT_DATABASE
        self.redis = os.environ.get("BENCH_REDIS_URL") or DEFAULT_REDIS
        self.lines: list[Line] = []
        self.counts: list[tuple[str, dict]] = []
        self.failures: list[str] = []
        self.fresh_loaded = False  # the PostgreSQL database holds the fresh import, for the update run

    # -- files and settings

    def file(self, plan: str, size: int, ext: str = "csv") -> Path:
        """The benchmark file, generated in a child process when not cached (xlwt holds a whole workbook)."""
        path = data.file_path(plan, size, ext, self.args.seed)
        if not path.exists():
            subprocess.run([sys.executable, data.__file__, plan, str(size), ext, "--seed", str(self.args.seed)],
                           cwd=ROOT, check=True)
        return path

    def env(self, database: str, redis: str | None, path: Path | None = None) -> dict:
        """The environment of a `personas` process: bench database, queue, and room for the file."""
        drop = ("DATABASE_URL", "REDIS_URL", "IMPORT_FAULT_KILL_AFTER_CHUNKS", "FLASK_APP", "MAX_UPLOAD_MB")
        env = {k: v for k, v in os.environ.items() if k not in drop}
        env.update(DATABASE_URL=database, SECRET_KEY="bench-secret")
        if redis:
            env["REDIS_URL"] = redis
        if path is not None and path.stat().st_size > 100 * 2**20:
            # Only when the file is over the default limit: otherwise the product's own settings.
            env["MAX_UPLOAD_MB"] = str(math.ceil(path.stat().st_size / 2**20))
        return env

    def setup(self, database: str) -> None:
        """An empty database with the schema, one account and its owner (the CLI's way)."""
        if database.startswith("sqlite"):
            Path(database.removeprefix("sqlite:///")).unlink(missing_ok=True)
        else:
            wipe_postgres(database)
            self.fresh_loaded = False
        env = self.env(database, None)
        personas(["init-db"], env)
        personas(["create-account", ACCOUNT], env)
        personas(["create-user", USER, "--account", ACCOUNT, "--password", PASSWORD], env)

    def flush_redis(self) -> None:
        """Empty the bench's Redis database (that one only)."""
        from redis import Redis

        Redis.from_url(self.redis).flushdb()

    # -- the worker and the CLI

    def start_worker(self, env: dict, name: str) -> subprocess.Popen:
        """`personas worker` as a child of this small process; returns once it listens on the queue."""
        from redis import Redis

        proc = subprocess.Popen([PERSONAS, "worker"], env=env, cwd=ROOT, stdout=log_file(f"{name}-worker.log"),
                                stderr=subprocess.STDOUT)
        redis, deadline = Redis.from_url(self.redis), time.monotonic() + 60
        while not redis.scard("rq:workers"):
            if reap(proc, block=False) is not None or time.monotonic() > deadline:
                if proc.returncode is None:
                    proc.kill()
                    reap(proc)
                raise BenchError(f"the worker did not start: see bench/out/logs/{name}-worker.log")
            time.sleep(POLL)
        return proc

    def stop_worker(self, proc: subprocess.Popen) -> float:
        """Stop the worker (warm shutdown) and return its peak RSS, work horses included, in MB."""
        proc.send_signal(signal.SIGTERM)
        _, usage = reap(proc)
        return peak_rss_mb(usage)

    def run_import(self, name: str, path: Path, database: str, worker: subprocess.Popen | None,
                   dry_run: bool = False) -> "ImportRun":
        """`personas import` to its end, watching the import's status and the memory of whoever works."""
        flags = ["--dry-run"] if dry_run else ["--accept-terms"]
        env = self.env(database, None if worker is None else self.redis, path)
        watcher = StatusWatcher(database)
        watcher.start()
        out = log_file(f"{name}-cli.json")
        started = watcher.started = time.perf_counter()
        cli = subprocess.Popen([PERSONAS, "import", "--account", ACCOUNT, "--user", USER, *flags, str(path)],
                               env=env, cwd=ROOT, stdout=out, stderr=log_file(f"{name}-cli.log"))
        # The worker's tree does the work; with no worker, the CLI's in-process runner does.
        memory = TreeMemory(cli.pid if worker is None else worker.pid)
        try:
            while (ended := reap(cli, block=False)) is None:
                if worker is not None and reap(worker, block=False) is not None:
                    cli.kill()
                    reap(cli)
                    raise BenchError(f"the worker died: see bench/out/logs/{name}-worker.log")
                time.sleep(POLL)
            seconds = time.perf_counter() - started
        finally:
            watcher.stop()
            tree_mb = memory.stop()
            out.close()
        code, usage = ended
        result = _last_json(Path(out.name))
        if code != 0 or result.get("status") not in ("completed", "dry_run"):
            raise BenchError(f"the import ended with {result or code}: see bench/out/logs/{name}-cli.log")
        return ImportRun(seconds, result, watcher, peak_rss_mb(usage), tree_mb)

    def queue_import(self, key: str, label: str, path: Path, rows: int, dry_run: bool = False,
                     fresh: bool = True, record: bool = True) -> None:
        """An import through Redis and a `personas worker` on PostgreSQL: total and phases."""
        if fresh:
            self.setup(self.pg)
        self.flush_redis()
        worker = self.start_worker(self.env(self.pg, self.redis, path), key)
        rss = None
        try:
            run = self.run_import(key, path, self.pg, worker, dry_run)
        finally:
            if worker.returncode is None:
                rss = self.stop_worker(worker)
        if record:
            self.add_phases(key, label, rows, run, rss, dry_run)
            self.counts.append((label, run.result))

    def add_phases(self, key: str, label: str, rows: int, run: "ImportRun", rss: float, dry_run: bool) -> None:
        """The total line, then submit, validate and apply from the status the watcher saw."""
        self.lines.append(Line(label, rows, run.seconds, rss, key, run.tree_mb))
        watcher = run.watcher
        marks = {s: watcher.reached(s) for s in ("validating", "validated", "queued", "completed")}
        phases = [("submit", "submit: CLI start, upload, mapping", watcher.started, marks["validating"]),
                  ("validate", "validate (parse, stage, dry-run merge)", marks["validating"], marks["validated"])]
        if not dry_run:
            phases.append(("apply", "apply (match, upsert, audit, audience)", marks["queued"], marks["completed"]))
        for phase, name, start, end in phases:
            if start is not None and end is not None:
                self.lines.append(Line(f"  {name}", rows, end - start, None, f"{key}.{phase}"))

    # -- the measurements

    def copy(self) -> None:
        """PostgreSQL COPY of the fresh CSV into a plain table of text columns: the limit."""
        path = self.file("fresh", self.args.rows)
        self.setup(self.pg)
        conn = pg_connect(self.pg)
        with conn.cursor() as cur:
            columns = ", ".join(f'"{header}" text' for header in data.HEADERS)
            cur.execute(f"CREATE TABLE bench_copy ({columns})")
            with open(path, "rb") as f:
                started = time.perf_counter()
                cur.copy_expert("COPY bench_copy FROM STDIN WITH (FORMAT csv, HEADER true)", f, size=1 << 20)
                seconds = time.perf_counter() - started
            cur.execute("SELECT count(*) FROM bench_copy")
            rows = cur.fetchone()[0]
            cur.execute("DROP TABLE bench_copy")
        conn.close()
        self.lines.append(Line("PostgreSQL COPY, CSV into a text table", rows, seconds, None, "copy"))

    def upload(self) -> None:
        """The wizard's upload step: POST of a ~100 MB CSV through Flask's test client."""
        path = self.file("upload", self.args.upload_mb)
        self.setup(self.pg)
        self.flush_redis()
        result = python_json(["--helper", "upload", str(path)], self.env(self.pg, self.redis))
        label = f"wizard upload step, {path.stat().st_size / 1e6:.0f} MB CSV (web process RSS)"
        self.lines.append(Line(label, result["rows"], result["seconds"], result["rss_mb"], "upload"))

    def dry_run(self) -> None:
        """`personas import --dry-run` on a fresh account: the validation alone."""
        path = self.file("fresh", self.args.rows)
        self.queue_import("dry-run", "CSV dry run (validate only)", path, self.args.rows, dry_run=True)

    def fresh(self) -> None:
        """The fresh CSV into an empty database: every row creates a persona."""
        path = self.file("fresh", self.args.rows)
        self.queue_import("fresh", "CSV import, empty database", path, self.args.rows)
        self.fresh_loaded = True

    def floor(self) -> None:
        """PostgreSQL's own writes of what the fresh import wrote: its personas, attributes, audit entries and
        audience members, COPYed back into an empty schema on two connections (as the apply's two writers)."""
        if not self.fresh_loaded:
            print("floor: importing the fresh CSV first (not measured)", flush=True)
            self.queue_import("floor-setup", "setup", self.file("fresh", self.args.rows), self.args.rows,
                              record=False)
        writers = (("persona", "persona_attribute"), ("audit_entry", "audience_member"))
        with tempfile.TemporaryDirectory(prefix="personas-floor-") as tmp:
            conn = pg_connect(self.pg)
            with conn.cursor() as cur:
                for table in (name for tables in writers for name in tables):
                    with open(f"{tmp}/{table}", "wb") as f:
                        cur.copy_expert(f'COPY "{table}" TO STDOUT', f, size=1 << 20)
                cur.execute('SELECT count(*) FROM "persona"')
                rows = cur.fetchone()[0]
            conn.close()
            self.setup(self.pg)
            pg_connect(self.pg).cursor().execute("CHECKPOINT")

            def write(tables: tuple[str, ...]) -> None:
                conn = pg_connect(self.pg)
                with conn.cursor() as cur:
                    for table in tables:
                        with open(f"{tmp}/{table}", "rb") as f:
                            cur.copy_expert(f'COPY "{table}" FROM STDIN', f, size=1 << 20)
                conn.close()

            threads = [threading.Thread(target=write, args=(tables,)) for tables in writers]
            started = time.perf_counter()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            seconds = time.perf_counter() - started
        self.lines.append(Line("PostgreSQL COPY of the fresh import's own rows (floor)", rows, seconds, None, "floor"))
        # The personas are back but not the import they came from (its id is free again, its audit rows are
        # not): the update line imports the fresh file again rather than build on this.
        self.fresh_loaded = False

    def update(self) -> None:
        """The update CSV over the personas the fresh CSV created: 75% of rows match one."""
        if not self.fresh_loaded:
            print("update: importing the fresh CSV first (not measured)", flush=True)
            self.queue_import("update-setup", "setup", self.file("fresh", self.args.rows), self.args.rows,
                              record=False)
        # The personas have been there a while in real life: autovacuum would have analyzed them.
        conn = pg_connect(self.pg)
        with conn.cursor() as cur:
            cur.execute("VACUUM ANALYZE")
        conn.close()
        path = self.file("update", self.args.rows)
        self.queue_import("update", "CSV import, update-heavy (75% match)", path, self.args.rows, fresh=False)
        self.fresh_loaded = False

    def excel_read(self, ext: str) -> None:
        """The reading library alone over the workbook (calamine, which imports use): the Excel pace."""
        rows = self.excel_rows(ext)
        path = self.file("fresh", rows, ext)
        result = python_json(["--helper", f"read-{ext}", str(path)], self.env(self.pg, None))
        self.lines.append(Line(f"{ext.upper()} read alone (calamine)", result["rows"], result["seconds"],
                               result["rss_mb"], f"{ext}-read"))

    def excel(self, ext: str) -> None:
        """The fresh workbook into an empty database."""
        rows = self.excel_rows(ext)
        self.queue_import(ext, f"{ext.upper()} import, empty database", self.file("fresh", rows, ext), rows)

    def excel_rows(self, ext: str) -> int:
        """The row count asked for this workbook type."""
        return self.args.xlsx_rows if ext == "xlsx" else self.args.xls_rows

    def sqlite(self) -> None:
        """The fresh CSV on a temp SQLite file with no REDIS_URL: the in-process runner of `make run`."""
        rows = self.args.sqlite_rows
        path = self.file("fresh", rows)
        with tempfile.TemporaryDirectory(prefix="personas-bench-") as tmp:
            url = f"sqlite:///{tmp}/bench.db"
            self.setup(url)
            run = self.run_import("sqlite", path, url, None)
        note = "" if rows == self.args.rows else f" ({rows:,} rows: --sqlite-rows)"
        self.add_phases("sqlite", f"SQLite import, in-process runner{note}", rows, run, run.cli_rss_mb, False)
        self.counts.append(("SQLite import", run.result))

    def run(self, names: list[str]) -> None:
        """Run the named measurements in the table's order; a failure is reported and the rest still run."""
        ensure_database(self.pg)
        steps = {"copy": self.copy, "upload": self.upload, "dry-run": self.dry_run, "fresh": self.fresh,
                 "floor": self.floor, "update": self.update, "xlsx-read": lambda: self.excel_read("xlsx"),
                 "xlsx": lambda: self.excel("xlsx"), "xls-read": lambda: self.excel_read("xls"),
                 "xls": lambda: self.excel("xls"), "sqlite": self.sqlite}
        for name in MEASUREMENTS:
            if name in names:
                print(f"measuring {name} ...", flush=True)
                try:
                    steps[name]()
                except BenchError as error:
                    self.failures.append(f"{name}: {error}")
                    print(f"{name} FAILED: {error}", flush=True)


def _last_json(path: Path) -> dict:
    """The JSON object on the last line of a CLI's output, {} when there is none."""
    lines = path.read_text().strip().splitlines()
    try:
        return json.loads(lines[-1]) if lines else {}
    except json.JSONDecodeError:
        return {}


# ---------------------------------------------------------------- the report

def print_table(bench: Bench) -> None:
    """The one table: rows, seconds, rows/s, peak RSS and the ratio to COPY."""
    copy = _line(bench, "copy")
    print()
    print(f"{'measurement':<58} {'rows':>10} {'seconds':>8} {'rows/s':>10} {'peak RSS MB':>11} "
          f"{'tree PSS MB':>11} {'x COPY':>7}")
    for line in bench.lines:
        rss, tree = (f"{mb:,.0f}" if mb is not None else "-" for mb in (line.rss_mb, line.tree_mb))
        ratio = f"{copy.rate / line.rate:.1f}" if copy and line.seconds > 0 else "-"
        print(f"{line.label:<58} {line.rows:>10,} {line.seconds:>8.2f} {line.rate:>10,.0f} {rss:>11} {tree:>11} "
              f"{ratio:>7}")
    for label, result in bench.counts:
        counts = ", ".join(f"{k} {result.get(k, 0):,}" for k in ("created", "updated", "unchanged", "rejected",
                                                                  "warnings"))
        print(f"  {label}: {counts}")


def _line(bench: Bench, key: str) -> Line | None:
    """The line with this key, None when it was not measured."""
    return next((line for line in bench.lines if line.key == key), None)


def excel_budget(read: Line) -> float:
    """The rows/s an Excel import reaches at its library's pace: reading, plus the CSV target's cost per row."""
    return 1 / (1 / read.rate + 1 / FRESH_RATE)


def targets(bench: Bench) -> list[tuple[str, str, bool | None]]:
    """(target, measured, met) for each of the issue's targets; met is None when not measured."""
    found = []
    copy, fresh, update = _line(bench, "copy"), _line(bench, "fresh"), _line(bench, "update")
    found.append((f"CSV import, empty database >= {FRESH_RATE:,} rows/s",
                  *((f"{fresh.rate:,.0f} rows/s", fresh.rate >= FRESH_RATE) if fresh else ("-", None))))
    found.append((f"CSV import, empty database within {FRESH_COPY_RATIO}x of COPY",
                  *((f"{copy.rate / fresh.rate:.1f}x", copy.rate / fresh.rate <= FRESH_COPY_RATIO)
                    if fresh and copy else ("-", None))))
    found.append((f"CSV import, update-heavy >= {UPDATE_RATE:,} rows/s",
                  *((f"{update.rate:,.0f} rows/s", update.rate >= UPDATE_RATE) if update else ("-", None))))
    for ext, bar in (("xlsx", XLSX_RATE), ("xls", XLS_RATE)):
        read, load = _line(bench, f"{ext}-read"), _line(bench, ext)
        aim = f" (aim at calamine's pace: {excel_budget(read):,.0f})" if read else ""
        found.append((f"{ext.upper()} import >= {bar:,} rows/s{aim}",
                      *((f"{load.rate:,.0f} rows/s", load.rate >= bar) if load else ("-", None))))
    sqlite = _line(bench, "sqlite")
    found.append((f"SQLite import, in-process runner >= {SQLITE_RATE:,} rows/s",
                  *((f"{sqlite.rate:,.0f} rows/s", sqlite.rate >= SQLITE_RATE) if sqlite else ("-", None))))
    workers = [line for line in bench.lines if line.memory_mb is not None and line.key in
               ("dry-run", "fresh", "update", "xlsx", "xls", "sqlite")]
    heaviest = max(workers, key=lambda line: line.memory_mb, default=None)
    found.append((f"worker memory < {RSS_LIMIT_MB} MB, every import",
                  *((f"max {heaviest.memory_mb:,.0f} MB ({heaviest.key})", heaviest.memory_mb < RSS_LIMIT_MB)
                    if heaviest else ("-", None))))
    upload = _line(bench, "upload")
    found.append((f"upload step < {UPLOAD_SECONDS:g} s for a 100 MB CSV",
                  *((f"{upload.seconds:.2f} s", upload.seconds < UPLOAD_SECONDS) if upload else ("-", None))))
    return found


def print_targets(bench: Bench) -> None:
    """The targets next to the table, each marked met or not met."""
    args = bench.args
    print()
    print("targets (set for 1,000,000 CSV rows, 100,000 XLSX rows, 50,000 XLS rows, a 100 MB upload):")
    if (args.rows, args.xlsx_rows, args.xls_rows) != (1_000_000, 100_000, 50_000):
        print(f"  this run: {args.rows:,} CSV, {args.xlsx_rows:,} XLSX, {args.xls_rows:,} XLS rows; "
              "fixed costs weigh more on fewer rows")
    for target, measured, met in targets(bench):
        verdict = "not measured" if met is None else ("met" if met else "NOT MET")
        print(f"  {target:<58} {measured:>22}  {verdict}")
    for failure in bench.failures:
        print(f"FAILED {failure}")
    # A child starts with its parent's peak RSS: the workers' figures cannot be below this.
    print(f"(bench process peak RSS {peak_rss_mb(resource.getrusage(resource.RUSAGE_SELF)):.0f} MB; "
          "logs in bench/out/logs/)")


# ---------------------------------------------------------------- helper modes (fresh processes)

def helper_upload(path: Path) -> dict:
    """Sign in as the bench owner and time the wizard's upload POST (run in a fresh process)."""
    from webapp import create_app
    from webapp.models import Import
    from webapp.security import FORM_FIELD, HEADER

    app = create_app({"DATABASE_URL": os.environ["DATABASE_URL"], "REDIS_URL": os.environ.get("REDIS_URL")})
    client = app.test_client()

    def token_of(url: str) -> str:
        """The CSRF token a page's forms carry, as a browser finds it."""
        page = client.get(url).get_data(as_text=True)
        return re.search(rf'name="{FORM_FIELD}" value="([^"]+)"', page).group(1)

    signed_in = client.post("/login", data={"email": USER, "password": PASSWORD, FORM_FIELD: token_of("/login")})
    if signed_in.status_code != 302:
        raise SystemExit(f"sign-in failed: {signed_in.status_code}")
    token = token_of("/imports/new")  # sign-in renews it
    body, boundary = multipart_body(path, FORM_FIELD, token)
    with open(body, "rb") as stream:
        # What htmx sends: the token as a header and in the form, the file as multipart form data.
        started = time.perf_counter()
        response = client.post("/imports/new", input_stream=stream, content_length=body.stat().st_size,
                               content_type=f"multipart/form-data; boundary={boundary}",
                               headers={"HX-Request": "true", HEADER: token})
        seconds = time.perf_counter() - started
    body.unlink()
    upload = Import.select().order_by(Import.id.desc()).first()
    if response.status_code != 200 or upload is None or not upload.headers:
        raise SystemExit(f"upload refused: {response.status_code} {response.get_data(as_text=True)[:500]}")
    with open(path, "rb") as f:
        rows = sum(1 for _ in f) - 1
    return {"seconds": seconds, "rows": rows, "rss_mb": peak_rss_mb(resource.getrusage(resource.RUSAGE_SELF))}


def multipart_body(path: Path, token_field: str, token: str) -> tuple[Path, str]:
    """The body a browser sends for the upload form, in a temp file (not in this process's memory)."""
    from io import BytesIO

    from werkzeug.datastructures import FileStorage
    from werkzeug.test import encode_multipart

    boundary, marker = "----bench-boundary-7MA4YWxkTrZu0gW", b"\0bench-file-content\0"
    _, template = encode_multipart({token_field: token, "file": FileStorage(
        stream=BytesIO(marker), filename=path.name, content_type="text/csv")}, boundary)
    head, tail = template.split(marker)
    body = Path(tempfile.mkstemp(prefix="bench-upload-", suffix=".body")[1])
    with open(body, "wb") as out, open(path, "rb") as src:
        out.write(head)
        while block := src.read(1 << 20):
            out.write(block)
        out.write(tail)
    return body, boundary


def helper_read(kind: str, path: Path) -> dict:
    """Every row of a workbook through calamine alone, as Python values (run in a fresh process)."""
    from python_calamine import CalamineWorkbook

    started = time.perf_counter()
    sheet = CalamineWorkbook.from_path(str(path)).get_sheet_by_index(0)
    rows = sum(1 for _ in sheet.iter_rows()) - 1
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "rows": rows, "rss_mb": peak_rss_mb(resource.getrusage(resource.RUSAGE_SELF))}


# ---------------------------------------------------------------- entry point

def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, help="CSV rows (default 1,000,000; --quick 50,000)")
    ap.add_argument("--xlsx-rows", type=int, help="XLSX rows (default 100,000; --quick 10,000)")
    ap.add_argument("--xls-rows", type=int, help="XLS rows, at most 65,535 (default 50,000; --quick 5,000)")
    ap.add_argument("--sqlite-rows", type=int, help="rows of the SQLite import (default: --rows)")
    ap.add_argument("--upload-mb", type=int, default=100, help="size of the upload step's CSV (default 100)")
    ap.add_argument("--quick", action="store_true", help="a fast smoke run: 50k CSV, 10k XLSX, 5k XLS rows")
    ap.add_argument("--only", action="append", choices=MEASUREMENTS, help="run this measurement (repeatable)")
    ap.add_argument("--seed", type=int, default=data.SEED)
    ap.add_argument("--helper", nargs=2, metavar=("KIND", "FILE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    sizes = (50_000, 10_000, 5_000) if args.quick else (1_000_000, 100_000, 50_000)
    args.rows = args.rows or sizes[0]
    args.xlsx_rows = args.xlsx_rows or sizes[1]
    args.xls_rows = args.xls_rows or sizes[2]
    args.sqlite_rows = args.sqlite_rows or args.rows
    return args


def main() -> None:
    """Run the measurements (each import with its own worker process) and print the table."""
    args = parse_args()
    if args.helper:
        kind, path = args.helper
        result = helper_upload(Path(path)) if kind == "upload" else helper_read(kind, Path(path))
        print(json.dumps(result))
        return
    bench = Bench(args)
    print(f"PostgreSQL {bench.pg.rsplit('@', 1)[-1]} (wiped), Redis {bench.redis.rsplit('@', 1)[-1]} (flushed); "
          f"{args.rows:,} CSV rows, {args.xlsx_rows:,} XLSX, {args.xls_rows:,} XLS; {os.cpu_count()} CPUs",
          flush=True)
    try:
        bench.run(args.only or MEASUREMENTS)
    except BenchError as error:  # the database or Redis is unreachable: nothing to measure
        sys.exit(f"bench: {error}")
    print_table(bench)
    print_targets(bench)
    sys.exit(1 if bench.failures else 0)


if __name__ == "__main__":
    main()
