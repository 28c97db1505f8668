"""Akida 1 and Akida 2 against akida 2.19.3 (software backend): every layer's integer output, exactly.

Each case is a random float network quantised with the project's ``quantize(net, chip, calibration)``:
a dense MLP ``n_in -> h1 [-> h2 [-> h3]] -> n_out`` or a small convolutional net (one or two ``conv2d``
maps, kernels 1, 3 or 5, stride 1 or 2, no padding or "same" padding, then a dense head). Weights and
biases get a random scale per layer (in one layer of five up to 10**5 times the weights), so that bias shifts,
32-bit post-op saturation and the 127 cap all occur; on Akida 2 some networks take a narrower
accumulator (``accumulator_bits`` 12 to 20, the engine's ``buffer_bits``) so that its saturation
occurs too, some have linear (no activation) hidden layers and some signed inputs. The case holds
the project's integers (``hardware.akida.AkidaParams`` per layer, weights in the project's layout) and
integer inputs; ``akida_driver.py`` builds the same layers in the engine (Akida 2: ``Dense1D`` /
``Conv2D``; Akida 1: ``FullyConnected`` / ``Convolutional``), sets the integers and reads each layer's
output (``y{i}``: hidden activity, then the output layer's raw sum), in the project's C-major order.
"""
from __future__ import annotations

import json
import warnings

import numpy as np

import neuro_balance as nb
from neuro_balance.hardware import load_profile, quantize
from neuro_balance.hardware.akida import AkidaParams, layer_outputs
from neuro_balance.hardware.fixed_point import round_int
from neuro_balance.hardware.quantized import LayerParams, QuantizedNetwork, SynapseParams
from neuro_balance.hardware.spec import ChipSpec
from neuro_balance.model.conv import conv_net

TOOL = "akida"
VENV = "akida"
SAMPLES = 6
BITS = {"akida1": {"weights": (1, 2, 4), "activations": (1, 2, 4)},
        "akida2": {"weights": (4, 8), "activations": (4, 8)}}
PARAMS = ("bias", "bias_shift", "scale", "shift", "max_value", "max_value_shift", "threshold", "step")


def _architecture(chip: str, rng: np.random.Generator) -> dict:
    """Sizes (and conv layers) of one random network, as plain JSON values."""
    if rng.random() < 0.35:
        return _conv_arch(chip, rng)
    sizes = [int(rng.integers(2, 41))] + [int(rng.integers(2, 25)) for _ in range(int(rng.integers(1, 4)))]
    return {"sizes": sizes + [int(rng.integers(2, 9))]}


def _conv_arch(chip: str, rng: np.random.Generator) -> dict:
    """A conv net the engine can build: odd kernels, stride 2 only with kernel 3 (Akida 2) on odd sizes."""
    c, h, w = int(rng.integers(1, 4)), int(rng.integers(5, 10)), int(rng.integers(5, 10))
    shape = [c, h, w]
    layers = []
    for _ in range(int(rng.integers(1, 3))):
        kernel = int(rng.choice([1, 3, 5]))
        if kernel > min(h, w):
            kernel = 1
        stride = 2 if kernel == 3 and rng.random() < 0.4 else 1
        padding = int(rng.choice([0, (kernel - 1) // 2]))
        if stride == 2 and padding and (h % 2 == 0 or w % 2 == 0):
            padding = 0            # "same" padding with stride 2 is symmetric only on odd sizes
        layers.append({"channels": int(rng.integers(2, 6)), "kernel": kernel, "stride": stride,
                       "padding": padding})
        h, w = (h + 2 * padding - kernel) // stride + 1, (w + 2 * padding - kernel) // stride + 1
    return {"input_shape": shape, "layers": layers, "dense": [int(rng.integers(2, 13))],
            "n_out": int(rng.integers(2, 6))}


def _skeleton(arch: dict, activation: list[str]) -> nb.Network:
    """The float network of an architecture (weights to be replaced)."""
    if "sizes" in arch:
        return nb.mlp(arch["sizes"], activation=activation, seed=0)
    return conv_net(arch["input_shape"], arch["layers"], dense=arch["dense"], n_out=arch["n_out"],
                    activation=activation[0], seed=0)


def _random_net(chip: str, rng: np.random.Generator) -> tuple[dict, list[str], nb.Network]:
    arch = _architecture(chip, rng)
    n_hidden = len(arch["sizes"]) - 2 if "sizes" in arch else len(arch["layers"]) + len(arch["dense"])
    linear = chip == "akida2" and "sizes" in arch and rng.random() < 0.3
    activation = ["linear" if linear and rng.random() < 0.5 else "relu" for _ in range(n_hidden)]
    net = _skeleton(arch, activation)
    for proj in net.projections:
        fan_in = proj.weight[0].size
        proj.weight = rng.normal(float(rng.normal(0, 0.3)), 1.0, proj.weight.shape) / np.sqrt(fan_in) \
            * 10.0 ** rng.uniform(-2, 2)
    for pop in net.populations.values():
        if pop.bias is not None:
            scale = np.abs(net.incoming(pop.name)[0].weight).max()
            big = rng.random() < 0.2             # now and then biases far above the weights
            exponent = rng.uniform(1, 5) if big else rng.uniform(-2, 0.5)
            pop.bias = rng.normal(0.0, 1.0, pop.bias.shape) * scale * 10.0 ** exponent
    return arch, activation, net


def _case(chip: str, rng: np.random.Generator) -> dict[str, np.ndarray]:
    arch, activation, net = _random_net(chip, rng)
    n_in = net.input.n_features
    signed = chip == "akida2" and rng.random() < 0.3
    calibration = rng.random((64, n_in)) * (2 if signed else 1) - (1 if signed else 0)
    x = calibration[:SAMPLES] * rng.uniform(0.5, 1.5)
    options = {"weight_bits": int(rng.choice(BITS[chip]["weights"])),
               "activation_bits": int(rng.choice(BITS[chip]["activations"]))}
    if chip == "akida2" and rng.random() < 0.3:
        options["accumulator_bits"] = int(rng.integers(12, 21))
    if rng.random() < 0.3:
        options.update(activation_method="percentile", activation_percentile=float(rng.uniform(70, 99)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")           # the profiles' unverified fields
        q = quantize(net, chip, calibration, **options)
    x_int, _ = q.input_format.fit(round_int(x / q.input_scale, "nearest"))
    case: dict[str, np.ndarray] = {
        "arch": np.array(json.dumps({"arch": arch, "activation": activation})),
        "x": x_int, "input_bits": np.array(q.input_format.bits),
        "acc_bits": np.array(q.spec.accumulator.bits if q.spec.accumulator is not None else 0),
        "n_layers": np.array(len(net.projections)),
    }
    for i, proj in enumerate(net.projections):
        p = q.layers[proj.post].akida
        case[f"w{i}"] = q.synapses[proj.name].mantissa
        case[f"weight_bits{i}"] = np.array(q.spec.weight_bits)
        case[f"relu{i}"] = np.array(int(p.relu))
        case[f"out_bits{i}"] = np.array(p.out_bits or 0)
        for key in PARAMS:
            value = getattr(p, key)
            if value is not None:
                case[f"{key}{i}"] = value
    return case


def make_cases(chip: str, seed: int, n_nets: int) -> list[dict[str, np.ndarray]]:
    """``n_nets`` random networks quantised by the project for ``chip`` (module docstring)."""
    rng = np.random.default_rng(seed)
    return [_case(chip, rng) for _ in range(n_nets)]


def qnet_from_case(chip: str, case: dict[str, np.ndarray]) -> QuantizedNetwork:
    """A `QuantizedNetwork` carrying exactly the case's integers (scales of 1: only integers run)."""
    info = json.loads(str(case["arch"]))
    net = _skeleton(info["arch"], info["activation"])
    prof = load_profile(chip, warn=False)
    acc_bits = int(case["acc_bits"])
    spec = ChipSpec.from_profile(prof, weight_bits=int(case["weight_bits0"]),
                                 **({"accumulator_bits": acc_bits} if acc_bits else {}))
    q = QuantizedNetwork(net, prof, spec, 0)
    for i, proj in enumerate(net.projections):
        w = np.asarray(case[f"w{i}"], dtype=np.int64)
        pop = net.populations[proj.post]
        q.synapses[proj.name] = SynapseParams(proj.name, w, np.zeros(pop.size, dtype=np.int64), w,
                                              np.ones(pop.size))
        out_bits = int(case[f"out_bits{i}"]) or None
        params = AkidaParams(1 if chip == "akida1" else 2, bool(case[f"relu{i}"]), out_bits,
                             **{k: np.asarray(case[f"{k}{i}"], dtype=np.int64) for k in PARAMS if f"{k}{i}" in case})
        q.layers[pop.name] = LayerParams(pop.name, np.ones(pop.size), None, akida=params)
    return q


def project_outputs(chip: str, case: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every layer's integer output from the project's Akida arithmetic on the case's integers."""
    q = qnet_from_case(chip, case)
    values = layer_outputs(q, np.asarray(case["x"], dtype=np.int64))
    names = [proj.post for proj in q.network.projections]
    return {f"y{i}": values[name] for i, name in enumerate(names)}
