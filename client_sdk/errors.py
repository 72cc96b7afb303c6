"""The SDK's errors: one root, :class:`StepUpError`, and a class per failure a caller can act on.

Each class subclasses the builtin it resembles where one exists (``ChallengeParseError`` is a
``ValueError``), the way ``requests.exceptions`` do.
"""

from __future__ import annotations

__all__ = ["ChallengeParseError", "StepUpError", "StepUpFailed"]


class StepUpError(Exception):
    """Root of every error this SDK raises."""


class ChallengeParseError(StepUpError, ValueError):
    """A ``WWW-Authenticate`` value does not follow the RFC 9110 §11 grammar."""


class StepUpFailed(StepUpError):
    """A step-up could not produce a token that meets the challenge.

    Raised when the provider did not reach the level, the user failed to authenticate, or the API
    challenged the new token again. More specific errors subclass it.
    """
