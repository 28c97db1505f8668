"""Every exception and warning class of the package: the one family raised for bad input, and the rest."""
from __future__ import annotations

__all__ = ["ModelError", "ActivationError", "ProfileError", "NumericalError", "UntrustedFileError", "GridError",
           "FixedPointOverflowError", "UnverifiedProfileWarning", "StaticEstimateWarning", "NotApplicable", "Terminated"]


class ModelError(ValueError):
    """A network or model file that is not valid; the message names the file, field and value."""


class ActivationError(ModelError):
    """An activation string that names no known unit, or has bad parameters."""


class ProfileError(ValueError):
    """A hardware profile that is not valid; the message names the file, field and value."""


class NumericalError(ValueError):
    """A result that float64 cannot hold: the message names the limit hit (overflow, underflow to 0, NaN) and where."""


class UntrustedFileError(ValueError):
    """An input file, or a part of it, refused by a reader of untrusted files before it is used.

    Raised by `neuro_balance.model.safe_yaml`, `safe_npz` and `nir_hdf5`, whose callers re-raise it as
    a `ModelError` or `ProfileError` naming the file: ``problem`` says what (naming the archive member
    or HDF5 object), ``at`` where in a text file (`` at line L, column C``, or empty).
    """

    def __init__(self, problem: str, at: str = "") -> None:
        self.problem, self.at = " ".join(problem.split()), at
        super().__init__(f"{self.problem}{at}")


class GridError(RuntimeError):
    """Cells of a grid of runs failed; ``.result`` keeps every record that was computed (`grid.GridResult`)."""

    def __init__(self, message: str, result=None) -> None:
        super().__init__(message)
        self.result = result


class FixedPointOverflowError(OverflowError):
    """Raised by the ``error`` overflow policy of a fixed-point format; names the quantity and the range."""


class UnverifiedProfileWarning(UserWarning):
    """A hardware profile uses values flagged ``unverified: true``."""


class StaticEstimateWarning(UserWarning):
    """A spiking chip's static estimate (`QuantizedNetwork.forward`) is beyond its stated bound of the stepped run."""


class NotApplicable(Exception):
    """A stage of the main job does not apply to this model (the message says why)."""


class Terminated(BaseException):
    """SIGTERM arrived (a `BaseException`, like `KeyboardInterrupt`, so no ``except Exception`` swallows it)."""
