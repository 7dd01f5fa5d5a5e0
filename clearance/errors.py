"""The one exception tree of Clearance, and the exit codes it maps to.

::

    Error                       exit 3  something around us failed (database, disk, key)
    ├── InputError              exit 2  bad usage or input: the caller can fix it
    │   ├── NotFoundError               an unknown digest, entry or file
    │   ├── ConflictError               contradicts what is already recorded
    │   ├── EvidenceFormatError         a report that cannot be read or understood
    │   └── NotInitialisedError         CLEARANCE_HOME or the database was never set up
    ├── RefusedError            exit 1  a control said no
    │   └── VerificationError           a record, blob, signature or proof does not verify
    └── InfrastructureError     exit 3
        ├── StoreError                  the database or blob store failed
        └── SigningError                the signing key is missing or unusable

Adapters translate third-party exceptions into these (``raise StoreError(...) from exc``);
the CLI catches :class:`Error` once and renders :meth:`Error.diagnostics`.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "ConflictError",
    "Error",
    "EvidenceFormatError",
    "ExitCode",
    "InfrastructureError",
    "InputError",
    "NotFoundError",
    "NotInitialisedError",
    "RefusedError",
    "SigningError",
    "StoreError",
    "VerificationError",
]


class ExitCode:
    """The documented exit-code contract of every command."""

    OK = 0
    REFUSED = 1
    INPUT = 2
    INFRASTRUCTURE = 3


class Error(Exception):
    """Base of every error Clearance raises on purpose."""

    exit_code: ClassVar[int] = ExitCode.INFRASTRUCTURE

    def __init__(self, message: str, *, where: str | None = None, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.where = where
        self.hint = hint

    def diagnostics(self) -> str:
        """One line a person can act on: where, what, and what to do."""
        text = f"{self.where}: {self.message}" if self.where else self.message
        if self.hint:
            text += f" ({self.hint})"
        return text

    def __str__(self) -> str:
        return self.diagnostics()


class InputError(Error):
    exit_code = ExitCode.INPUT


class NotFoundError(InputError):
    pass


class ConflictError(InputError):
    pass


class EvidenceFormatError(InputError):
    pass


class NotInitialisedError(InputError):
    pass


class RefusedError(Error):
    exit_code = ExitCode.REFUSED


class VerificationError(RefusedError):
    pass


class InfrastructureError(Error):
    exit_code = ExitCode.INFRASTRUCTURE


class StoreError(InfrastructureError):
    pass


class SigningError(InfrastructureError):
    pass
