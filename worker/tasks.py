"""RQ job entry points: they take an import id, open their own connection and call the core."""
from webapp.config import limits_from_env
from webapp.db import db
from webapp.importer import engine
from webapp.importer.errors import FileRefused
from webapp.models import Import

MAX_ATTEMPTS = 5
RETRY_MESSAGE = "The import was interrupted and is being resumed where it stopped."


def validate_import(import_id: int, limits=None) -> None:
    """Job: the Review step's full validation pass (dry run)."""
    _run(import_id, ready=(), working="validating", work=lambda lease: engine.validate(
        import_id, lease, max_rows=(limits or limits_from_env()).max_rows,
        max_bytes=(limits or limits_from_env()).max_bytes))


def apply_import(import_id: int, limits=None) -> None:
    """Job: apply a validated import from its checkpoint to the end."""
    _run(import_id, ready=("queued",), working="running", work=lambda lease: engine.apply(import_id, lease))


def _run(import_id: int, ready: tuple, working: str, work) -> None:
    with db.connection_context():
        upload = Import.get_or_none(Import.id == import_id)
        if upload is None:
            return
        if upload.attempt >= MAX_ATTEMPTS and upload.status == working:
            engine.fail(import_id, None, f"The import stopped unexpectedly {upload.attempt} times and was halted. "
                        "Rows applied so far stay applied; nothing was applied twice.")
            return
        lease = engine.claim(import_id, ready, working)
        if lease is None:
            return  # someone else holds a live lease, or it is already done
        try:
            work(lease)
        except FileRefused as refused:
            engine.fail(import_id, lease, refused.message)  # a bad file fails the same way every time
        except engine.LeaseLost:
            return
        except Exception:
            # Let a retry claim it at once, and tell the user the truth meanwhile.
            Import.update(heartbeat_at=None, error_message=RETRY_MESSAGE).where(
                (Import.id == import_id) & (Import.lease == lease)).execute()
            raise
