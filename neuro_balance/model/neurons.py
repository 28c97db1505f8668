"""Neuron parameters of a population (the NIR neuron models) and the symmetry each model has.

A population imported from NIR keeps its neuron node's parameters in `Neuron`: the model name and
one array per parameter, each of the node's shape (``(n,)`` for a vector, ``(C, H, W)`` for a
feature map). Field names are NIR's:

========  ==================================================================  ==========
model     parameters                                                          symmetry
========  ==================================================================  ==========
IF        r, v_threshold, v_reset                                             gauge
LIF       tau, r, v_leak, v_threshold, v_reset                                gauge
CubaLIF   tau_syn, tau_mem, r, v_leak, v_threshold, v_reset, w_in             gauge
LI        tau, r, v_leak                                                      exchange
CubaLI    tau_syn, tau_mem, r, v_leak, w_in                                   exchange
I         r                                                                   exchange
========  ==================================================================  ==========

**gauge** (spiking units, exact): multiplying a unit's incoming weights and bias and its potentials
(``v_threshold``, ``v_reset``, ``v_leak``) by the same ``mu > 0`` multiplies its membrane by ``mu`` at
every time: the spike train is unchanged (bit for bit when ``mu`` is a power of two, whatever the
time step and reset rule, subtraction or to a value). Outgoing weights do not change.

**exchange** (non-spiking units, exact): these units are linear in their input, so multiplying the
incoming weights, bias and ``v_leak`` by ``lam`` and the outgoing weights by ``1 / lam`` leaves
every other unit unchanged: the paper's balancing applies exactly (as for a linear unit).

For spiking units the exchange (threshold fixed) is only **rate-level**: it multiplies the unit's
firing rate by ``lam`` while the rate stays below one spike per step (see `neuro_balance.balancing.spiking`).
"""
from __future__ import annotations

from dataclasses import dataclass
import numpy as np

from ..errors import ModelError

__all__ = ["Neuron", "NEURON_MODELS", "POTENTIALS", "SPIKING", "SYMMETRY"]

NEURON_MODELS: dict[str, tuple[str, ...]] = {
    "IF": ("r", "v_threshold", "v_reset"),
    "LIF": ("tau", "r", "v_leak", "v_threshold", "v_reset"),
    "CubaLIF": ("tau_syn", "tau_mem", "r", "v_leak", "v_threshold", "v_reset", "w_in"),
    "LI": ("tau", "r", "v_leak"),
    "CubaLI": ("tau_syn", "tau_mem", "r", "v_leak", "w_in"),
    "I": ("r",),
}
SPIKING = frozenset({"IF", "LIF", "CubaLIF"})
SYMMETRY = {name: "gauge" if name in SPIKING else "exchange" for name in NEURON_MODELS}
POTENTIALS = ("v_threshold", "v_reset", "v_leak")  # travel with the incoming weights
_POSITIVE = ("tau", "tau_syn", "tau_mem")


@dataclass(eq=False)
class Neuron:
    """The NIR neuron model of a population and its parameters.

    Parameters
    ----------
    model : str
        A key of `NEURON_MODELS`.
    params : mapping of str to ndarray
        Exactly the model's parameters, float arrays of one common shape.
    """

    model: str
    params: dict[str, np.ndarray]

    def __post_init__(self) -> None:
        if self.model not in NEURON_MODELS:
            raise ModelError(f"neuron: unknown model {self.model!r}; known: {', '.join(NEURON_MODELS)}")
        names = NEURON_MODELS[self.model]
        missing = [k for k in names if k not in self.params]
        extra = sorted(set(self.params) - set(names))
        if missing or extra:
            raise ModelError(f"neuron ({self.model}): parameters {sorted(self.params)} do not match "
                             f"{list(names)}" + (f"; missing {missing}" if missing else "")
                             + (f"; unknown {extra}" if extra else ""))
        try:
            self.params = {k: np.asarray(self.params[k], dtype=np.float64) for k in names}
        except (TypeError, ValueError) as err:
            raise ModelError(f"neuron ({self.model}): parameters must be real numbers ({err})") from None
        shapes = {k: v.shape for k, v in self.params.items()}
        if len(set(shapes.values())) != 1:
            raise ModelError(f"neuron ({self.model}): parameters must share one shape, got {shapes}")
        for key, value in self.params.items():
            if not np.all(np.isfinite(value)):
                raise ModelError(f"neuron ({self.model}).{key}: contains NaN or Inf")
            if key in _POSITIVE and np.any(value <= 0):
                raise ModelError(f"neuron ({self.model}).{key}: time constants must be > 0, got min {value.min()}")

    @property
    def shape(self) -> tuple[int, ...]:
        """The shape of every parameter array (the node's shape)."""
        return next(iter(self.params.values())).shape

    @property
    def spiking(self) -> bool:
        """True for IF, LIF and CubaLIF (the unit emits spikes; its symmetry is the gauge)."""
        return self.model in SPIKING

    @property
    def symmetry(self) -> str:
        """``"gauge"`` for spiking models, ``"exchange"`` for non-spiking ones (module docstring)."""
        return SYMMETRY[self.model]

    def with_potentials_scaled(self, factors: np.ndarray) -> "Neuron":
        """A copy whose potentials (``v_threshold``, ``v_reset``, ``v_leak``) are multiplied per unit.

        Parameters
        ----------
        factors : ndarray of shape (size,)
            One factor per unit (float64 arrays, like weights); a unit of a feature map is a channel, so its factor applies to
            every position of the channel (the C-major leading axis).
        """
        factors = np.asarray(factors, dtype=np.float64)
        params = {}
        for key, value in self.params.items():
            if key in POTENTIALS:
                value = (value.reshape(factors.size, -1) * factors[:, None]).reshape(value.shape)
            params[key] = value.copy()
        return Neuron(self.model, params)

    def check_size(self, n_features: int, where: str) -> None:
        """Raise `ModelError` unless the parameters hold ``n_features`` values."""
        if int(np.prod(self.shape)) != n_features:
            raise ModelError(f"{where}.neuron: {self.model} parameters of shape {list(self.shape)} do not fit "
                             f"{n_features} features")
