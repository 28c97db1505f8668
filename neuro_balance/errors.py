"""The one family of exceptions raised for bad input."""
from __future__ import annotations

__all__ = ["ModelError", "ProfileError"]


class ModelError(ValueError):
    """A network or model file that is not valid; the message names the file, field and value."""


class ProfileError(ValueError):
    """A hardware profile that is not valid; the message names the file, field and value."""
