"""The one family of exceptions raised for bad input."""
from __future__ import annotations

__all__ = ["ModelError", "ProfileError", "GridError"]


class ModelError(ValueError):
    """A network or model file that is not valid; the message names the file, field and value."""


class ProfileError(ValueError):
    """A hardware profile that is not valid; the message names the file, field and value."""


class GridError(RuntimeError):
    """Cells of a grid of runs failed; ``.result`` keeps every record that was computed (`grid.GridResult`)."""

    def __init__(self, message: str, result=None) -> None:
        super().__init__(message)
        self.result = result
