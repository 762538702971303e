"""The same file twice: an earlier completed import of the same content adds its points again."""
from webapp.importer.states import Status
from webapp.models import Import


def earlier_import(upload: Import) -> Import | None:
    """The account's latest completed (not reverted) import of a file with this one's sha256, else None."""
    if not upload.sha256:
        return None
    query = Import.select().where((Import.account == upload.account_id) & (Import.sha256 == upload.sha256)
                                  & (Import.status == Status.COMPLETED) & (Import.id != upload.id))
    if upload.sheet:
        # Another sheet of the same workbook is other content.
        query = query.where(Import.sheet == upload.sheet)
    return query.order_by(Import.finished_at.desc(), Import.id.desc()).first()


def warning(earlier: Import | None) -> str | None:
    """What the Uploaded and Review steps say about an earlier import of the same file."""
    if earlier is None:
        return None
    return (f"This file was already imported on {earlier.finished_at:%Y-%m-%d} (import #{earlier.id}). "
            "Importing it again adds its points again.")
