"""One database for the app, the worker and the CLI: a Peewee proxy bound by init_db()."""
import logging
from contextlib import contextmanager

from peewee import DatabaseProxy, PostgresqlDatabase, SqliteDatabase
from playhouse.db_url import connect

db = DatabaseProxy()

SQLITE_PRAGMAS = {
    "journal_mode": "wal",
    "foreign_keys": 1,
    # Web requests, the runner thread and the CLI share one file: wait instead of failing.
    "busy_timeout": 30000,
    "synchronous": "normal",
    "cache_size": -64 * 1024,
}


def init_db(url: str):
    """Bind the proxy to the database at url and return it."""
    # Peewee logs every query with its parameters at DEBUG: customers' emails, phones and names. Keep them
    # out of the logs whatever the root level (to see SQL while developing, lower it again after start-up).
    logging.getLogger("peewee").setLevel(logging.INFO)
    if url.startswith("sqlite"):
        database = connect(url, pragmas=SQLITE_PRAGMAS, check_same_thread=False)
    else:
        database = connect(url)
    db.initialize(database)
    return database


def is_postgres() -> bool:
    """True when the bound database is PostgreSQL (the COPY bulk path applies)."""
    return isinstance(db.obj, PostgresqlDatabase)


def is_sqlite() -> bool:
    """True when the bound database is SQLite."""
    return isinstance(db.obj, SqliteDatabase)


def write_transaction():
    """A transaction that takes the write lock up front on SQLite, so reads inside it stay current."""
    return db.atomic("IMMEDIATE") if is_sqlite() else db.atomic()


@contextmanager
def chunk_transaction():
    """write_transaction() for one chunk of an import, whose commit need not wait for the disk.

    A chunk commits with its checkpoint, so a server crash that loses the last commits only rewinds the
    checkpoint and the rerun applies those rows once more, exactly once. Not waiting for the WAL flush
    at each of a million-row import's 500 commits saves seconds.
    """
    with write_transaction() as transaction:
        if is_postgres():
            db.execute_sql("SET LOCAL synchronous_commit = off")
            # A chunk looks up thousands of personas by key in hot, cached indexes: priced at the default
            # 4 (a disk seek), those lookups lose to a sequential scan of the whole table.
            db.execute_sql("SET LOCAL random_page_cost = 1.1")
        yield transaction
