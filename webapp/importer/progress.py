"""Progress of an import as numbers for the progress partial: done, total, percent, rate, ETA."""
from webapp.importer.engine import stale_after
from webapp.importer.states import BEATING, SETTLED, Status
from webapp.models import Import, utcnow


def progress(upload: Import) -> dict:
    """rows_done, rows_total, percent, rate_per_s, eta_s (None when unknown), plus status fields.

    The rate is rows per second of working time: claim() keeps started_at clear of the time a dead
    run lay idle, and rows_done only moves with committed chunks (validation restarts from 0).
    """
    done, total = upload.rows_done or 0, upload.rows_total or upload.row_count or 0
    if upload.status == Status.COMPLETED:
        done = total = max(done, total)
    percent = min(100.0, round(100.0 * done / total, 1)) if total else None
    rate = eta = None
    if upload.status in BEATING and upload.started_at and upload.heartbeat_at and done:
        elapsed = (upload.heartbeat_at - upload.started_at).total_seconds()
        if elapsed > 0:
            rate = round(done / elapsed, 1)
            eta = round(max(total - done, 0) / rate, 1) if total and rate else None
    now = utcnow()
    stalled = (upload.status in BEATING and upload.heartbeat_at is not None
               and upload.heartbeat_at < now - stale_after())
    return {
        "status": upload.status, "rows_done": done, "rows_total": total or None, "percent": percent,
        "rate_per_s": rate, "eta_s": eta, "attempt": upload.attempt, "heartbeat_at": upload.heartbeat_at,
        "stalled": stalled, "message": upload.error_message, "finished": upload.status in SETTLED,
    }
