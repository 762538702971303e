"""Errors the core raises with a message a marketer can read."""


class FileRefused(ValueError):
    """The file cannot be imported at all; str(exc) is the message shown to the user."""

    def __init__(self, message: str, sheets: list[str] | None = None, header_kind: str | None = None):
        super().__init__(message)
        self.message = message
        # Set when the only problem is that a workbook has several sheets: the names to choose from.
        self.sheets = sheets
        # Set when the only problem is that no row looks like a header row: the file's kind ("csv", "xlsx"…).
        self.header_kind = header_kind
