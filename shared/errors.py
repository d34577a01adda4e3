"""Domain errors: what a use case or a rule says went wrong, in words of the domain.

They carry no HTTP status: `shared.web` maps each type to one status in one table at the edge
(ERROR_STATUS), for every service alike. A service subclasses them for its own cases (approval's
`AlreadyDecided` is a `NotAllowedNow`), and the subclass inherits the mapping.
"""
from __future__ import annotations


class DomainError(Exception):
    """Base of every domain error: a message for people, optional details for clients."""

    def __init__(self, message: str, details=None):
        super().__init__(message)
        self.message = message
        self.details = details


class RuleViolation(DomainError):
    """The request breaks a rule whatever the record's state (a bad number of days, no reason): 400."""


class NotAllowedNow(DomainError):
    """The request clashes with the record's current state (already decided, not while paused): 409."""


class NotVisible(DomainError):
    """No such record, or one the caller may not see: both answer alike (404), so existence cannot be probed."""


class NotPermitted(DomainError):
    """The caller sees the record or route but may not take this step on it (a clerk of another centre): 403."""
