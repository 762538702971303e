"""Unfinished imports (drafts): which can be discarded, and expiring those nobody touched for days."""
import datetime
import logging

from peewee import fn

from webapp.importer import flow
from webapp.importer.states import EDITABLE, VALIDATING, Changed
from webapp.models import Import, utcnow

DRAFT_DAYS = 7  # a draft untouched this long is removed with its stored file
log = logging.getLogger(__name__)


def unfinished_where():
    """The imports a user started and never submitted (a validation that failed included)."""
    return Import.terms_accepted_at.is_null() & Import.status.in_((*EDITABLE, VALIDATING))


def discardable(upload: Import) -> bool:
    """True for a draft the user may discard now (not while its check runs: the worker holds it)."""
    return upload.terms_accepted_at is None and upload.status in EDITABLE


def removed_message(upload: Import) -> str:
    """What the user reads once a draft is gone."""
    return f"“{upload.file_name}” was removed with its stored file. Nothing was imported from it."


def last_touched():
    """When a draft last moved: its last move, else its upload."""
    return fn.COALESCE(Import.touched_at, Import.created_at)


def expire(days: int = DRAFT_DAYS, now: datetime.datetime | None = None) -> list[int]:
    """Remove the drafts untouched for `days` (their stored files with them); returns their ids."""
    cutoff = (now or utcnow()) - datetime.timedelta(days=days)
    stale = Import.select().where(unfinished_where() & Import.status.in_(EDITABLE) & (last_touched() < cutoff))
    removed = []
    for upload in list(stale):
        try:
            # From the version read: a draft the user moves meanwhile is kept.
            flow.discard(upload)
        except Changed:
            continue
        removed.append(upload.id)
    if removed:
        log.info("removed %d drafts untouched for %d days: %s", len(removed), days, removed)
    return removed

