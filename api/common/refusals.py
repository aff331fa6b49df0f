"""What the platform's domain refuses, and why, in both languages: no HTTP here. The domain
(:mod:`api.precredit.decide`, :mod:`api.objections.workflow`) raises a :class:`Refusal` of the kind that fits; the
service's edge (:mod:`api.common.errors`) answers each kind with its status, the command line prints its
words. A new workflow reuses these kinds; a kind that needs a new status is added here and mapped there.
"""

from __future__ import annotations


class Refusal(Exception):
    """A request the domain will not carry out: a stable ``code`` and the words in English and Chinese."""

    def __init__(self, code: str, message: str, message_zh: str):
        super().__init__(message)
        self.code, self.message, self.message_zh = code, message, message_zh


class Invalid(Refusal):
    """What was asked is malformed or breaks a rule of its own kind (a code's check digit, a filing's fields)."""


class Forbidden(Refusal):
    """The caller may not do this (its role, or an authorisation that does not hold)."""


class NotFound(Refusal):
    """What was named does not exist on the platform."""


class Conflict(Refusal):
    """It cannot be done in the state things are in now (already settled, a duplicate, a record gone)."""


class Unavailable(Refusal):
    """The platform cannot answer yet (no champion model, a profile out of date with the model)."""
