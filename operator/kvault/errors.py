"""Typed errors shared by every layer.

Each error carries a stable ``code`` (the Azure Key Vault error code where one exists) so that
the data plane can map it to an HTTP status without string matching. Messages name what was
wrong and never include secret material.
"""

from __future__ import annotations


class KvaultError(Exception):
    """Base of every error kvault raises on purpose."""

    code = "InternalError"
    #: A finer code for clients (Azure's ``innererror.code``), or ``None``.
    inner_code: str | None = None

    @property
    def outcome(self) -> str:
        """What the audit log records for an operation this error ended."""
        return self.code

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadParameter(KvaultError):
    """Input that breaks a documented rule (name, size, count...). Nothing was changed."""

    code = "BadParameter"


class NotFound(KvaultError):
    """Nothing by that name. ``code`` names what is missing in Azure's terms
    (``SecretNotFound``, ``KeyNotFound``, ``VaultNotFound``...)."""

    code = "NotFound"

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code

    @property
    def outcome(self) -> str:
        """The audit log says ``NotFound`` for every kind (its operation names the kind)."""
        return "NotFound"


class Conflict(KvaultError):
    """The operation does not fit the current state (name taken, deleted-but-recoverable...)."""

    code = "Conflict"


class DeletedButRecoverable(Conflict):
    """The name belongs to a soft-deleted item: recover or purge it before reusing the name."""

    inner_code = "ObjectIsDeletedButRecoverable"


class Forbidden(KvaultError):
    """The operation is refused by policy (disabled item, purge protection, a key operation
    its ``key_ops`` do not list...); ``inner_code`` says which (Azure's innererror)."""

    code = "Forbidden"

    def __init__(self, message: str, inner_code: str | None = None) -> None:
        super().__init__(message)
        if inner_code is not None:
            self.inner_code = inner_code


class Unauthenticated(KvaultError):
    """No credential, or one that is invalid, expired or for another audience (HTTP 401).

    ``reason`` is one of :data:`AUTH_REASONS`: the audit line's outcome and the label of the
    authentication-failure metric (a fixed set, never text from the request)."""

    code = "Unauthorized"

    def __init__(self, message: str, reason: str = "InvalidToken") -> None:
        super().__init__(message)
        self.reason = reason if reason in AUTH_REASONS else "InvalidToken"


#: Why a request was not authenticated (:attr:`Unauthenticated.reason`).
AUTH_REASONS = frozenset(
    {
        "MissingToken",  # no ``Authorization: Bearer`` (the SDKs' first, challenge request)
        "MalformedToken",  # not a token this kvault can parse
        "BadSignature",  # a kvault token whose signature does not verify
        "WrongIssuer",
        "WrongAudience",
        "ExpiredToken",
        "NotYetValid",
        "InvalidToken",  # refused otherwise (unknown, revoked, refused by the Kubernetes API)
    }
)


class Throttled(KvaultError):
    """Too many requests for a vault or from a principal (HTTP 429 + ``Retry-After``).

    ``reason`` says which limit (Azure's message names it); ``retry_after`` is whole seconds
    until the request would be admitted."""

    code = "Throttled"

    def __init__(self, message: str, reason: str, retry_after: int) -> None:
        super().__init__(message)
        self.reason = reason
        self.retry_after = max(1, retry_after)


class Unavailable(KvaultError):
    """A service kvault depends on (the Kubernetes API, the HSM...) cannot be reached now; the
    caller may retry (HTTP 503). Says nothing about the caller's credential."""

    code = "ServiceUnavailable"


class HSMUnavailable(Unavailable):
    """The HSM does not answer now (token removed, device error): nothing falls back to
    anything else, the request is refused with 503, and kvault reconnects when it returns."""


class ForbiddenByRbac(Forbidden):
    """The principal holds no role assignment that allows the data action (HTTP 403)."""

    inner_code = "ForbiddenByRbac"

    @property
    def outcome(self) -> str:
        return "ForbiddenByRbac"


class ItemDisabled(Forbidden):
    """The item version is disabled: its value cannot be read until it is enabled again.

    ``inner_code`` is the kind's Azure code (``SecretDisabled``, ``KeyDisabled``...)."""


class PurgeProtected(Forbidden):
    """Purge is refused while the vault has purge protection and the retention has not passed."""

    inner_code = "PurgeProtectionEnabled"


class IntegrityError(KvaultError):
    """Stored or supplied ciphertext failed authentication: tampered, moved or foreign."""

    code = "IntegrityError"


class ConfigError(KvaultError):
    """kvault is configured wrongly (missing or malformed key, bad module path...)."""

    code = "ConfigError"


class StorageConflict(KvaultError):
    """A compare-and-set precondition failed; the caller may re-read and retry.

    The domain retries its own (:func:`kvault.barrier.retry.cas_retry`); one that escapes
    reaches a client as Azure's 409 ``Conflict`` (nothing was written), audited so."""

    code = "StorageConflict"

    @property
    def outcome(self) -> str:
        return "Conflict"


class HSMError(KvaultError):
    """The HSM plugin failed to perform an operation."""

    code = "HSMError"
