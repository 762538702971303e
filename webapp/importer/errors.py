"""Errors the core raises with a message a marketer can read."""


class FileRefused(ValueError):
    """The file cannot be imported at all; str(exc) is the message shown to the user."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message
