"""The CLI's one-line errors and the exit codes scripts can rely on."""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1  # the service refused or failed the request (403, 409, 5xx, ...)
EXIT_USAGE = 2  # bad flags or local input
EXIT_NOT_FOUND = 3  # the item (or vault) does not exist
EXIT_AUTH = 4  # no token, or the token was rejected (401)
EXIT_UNREACHABLE = 5  # no connection to the endpoint


class CliError(Exception):
    """A one-line error for the user and the exit code that goes with it."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
