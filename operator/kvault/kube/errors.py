"""Errors of the Kubernetes API, one class per status (as kopf's ``APIError`` family).

``ApiError(status, reason, message)`` builds the class of that status, so code that catches
``NotFound`` also catches a 404 raised by anything that constructs the base class. Callers
catch a class; nobody outside ``kube/`` compares a status code.
"""

from __future__ import annotations

from typing import ClassVar

from kvault.errors import KvaultError

_BY_STATUS: dict[int, type[ApiError]] = {}


class ApiError(KvaultError):
    """The API server answered with an error status; ``reason`` and ``message`` are those of
    its ``Status`` object (short, never the request)."""

    code = "KubeApiError"
    #: The HTTP status a subclass stands for (0: any other).
    STATUS: ClassVar[int] = 0

    def __new__(cls, status: int, reason: str = "", message: str = "") -> ApiError:
        target = _BY_STATUS.get(status, cls) if cls is ApiError else cls
        return super().__new__(target)

    def __init__(self, status: int, reason: str = "", message: str = "") -> None:
        super().__init__(f"Kubernetes API error {status} {reason}: {message}")
        self.status = status
        self.reason = reason

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if cls.STATUS:
            _BY_STATUS[cls.STATUS] = cls


class Unauthorized(ApiError):
    """401: our own credentials were refused."""

    STATUS = 401


class Forbidden(ApiError):
    """403: our identity lacks the RBAC for the call."""

    STATUS = 403


class NotFound(ApiError):
    """404: no such object (or namespace)."""

    STATUS = 404


class Conflict(ApiError):
    """409: exists already, stale ``resourceVersion``, or a failed uid precondition."""

    STATUS = 409


class Invalid(ApiError):
    """422: the object or patch was refused (including a failed JSON-patch ``test``)."""

    STATUS = 422


#: The historical name (kept for importers of ``kvault.kube.client``).
KubeApiError = ApiError
