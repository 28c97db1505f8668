"""Run the cases of ``scripts/vendor/akida_project.py`` through akida's engine (software backend), one process per case.

Usage (in the akida venv, where neuro_balance is not installed)::

    python akida_driver.py in.npz out.npz

Per case, the layers are built in the engine (Akida 2: ``Dense1D`` / ``Conv2D``, Akida 1:
``FullyConnected`` / ``Convolutional``, after an ``InputData``), the project's integers are set with
``set_variable`` and every layer's output is read from a model of the layers up to it. Conversions
between the project's layout and the engine's: the input map (C, H, W) is the engine's (H, W, C); a
kernel ``W[o, c, i, j]`` (cross-correlation) is ``K[k-1-i, k-1-j, c, o]`` (the engine convolves);
"same" padding is the engine's ``Padding.Same`` (TensorFlow's, checked to pad as the project does);
a dense layer after a map reads the engine's flattening (`_engine_weights`). Each case runs in a child process
(an out-of-range shift aborts the engine's process); a case that fails writes ``c{i}.error``.
"""
from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
import tempfile

import numpy as np


VAR_TYPES = {"bias": np.int8, "bias_shift": np.uint8, "output_scales": np.uint8, "output_shift": np.int8,
             "max_value": np.uint8, "max_value_shift": np.uint8, "threshold": np.int32}
PROJECT_NAMES = {"bias": "bias", "bias_shift": "bias_shift", "output_scales": "scale", "output_shift": "shift",
                 "max_value": "max_value", "max_value_shift": "max_value_shift", "threshold": "threshold"}


def _fits(name: str, value: np.ndarray, dtype) -> None:
    info = np.iinfo(dtype)
    lo, hi = info.min, info.max
    if name in ("bias_shift", "max_value_shift"):
        hi = 31
    if name == "output_shift":
        lo, hi = -31, 31
    if value.size and (value.min() < lo or value.max() > hi):
        raise ValueError(f"{name}: values outside [{lo}, {hi}] (the engine aborts or truncates), "
                         f"got [{value.min()}, {value.max()}]")


def _layers(case: dict) -> list[dict]:
    """Per layer: kind, geometry, the pre map's (C, H, W) and the post map's."""
    info = json.loads(str(case["arch"]))["arch"]
    if "sizes" in info:
        sizes = info["sizes"]
        return [{"kind": "dense", "units": n, "pre": (m, 1, 1)} for m, n in zip(sizes[:-1], sizes[1:])]
    c, h, w = info["input_shape"]
    out = []
    for spec in info["layers"]:
        k, s, p = spec["kernel"], spec["stride"], spec["padding"]
        if p not in (0, (k - 1) // 2):
            raise ValueError(f"padding {p} with kernel {k}: the engine pads 'same' or 'valid' only")
        out.append({"kind": "conv", "units": spec["channels"], "kernel": k, "stride": s, "padding": p,
                    "pre": (c, h, w)})
        c, h, w = spec["channels"], (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
    for n in info["dense"] + [info["n_out"]]:
        out.append({"kind": "dense", "units": n, "pre": (c, h, w)})
        c, h, w = n, 1, 1
    return out


def _engine_layer(akida, version: int, lay: dict, i: int, case: dict, last: bool):
    relu = bool(case[f"relu{i}"])
    bits = int(case[f"out_bits{i}"])
    wbits = int(case[f"weight_bits{i}"])
    if lay["kind"] == "conv":
        pad = akida.Padding.Valid if lay["padding"] == 0 else akida.Padding.Same
        if version == 2:
            return akida.Conv2D(lay["units"], lay["kernel"], kernel_stride=lay["stride"], padding=pad,
                                output_bits=bits or 32, buffer_bits=int(case["acc_bits"]),
                                activation=akida.ActivationType.ReLU if relu else akida.ActivationType.NoActivation,
                                weights_bits=wbits)
        return akida.Convolutional((lay["kernel"], lay["kernel"]), lay["units"], padding=pad,
                                   kernel_stride=(lay["stride"], lay["stride"]), weights_bits=wbits,
                                   activation=not last, act_bits=bits or 4)
    if version == 2:
        return akida.Dense1D(lay["units"], output_bits=bits or 32, buffer_bits=int(case["acc_bits"]),
                             activation=akida.ActivationType.ReLU if relu else akida.ActivationType.NoActivation,
                             weights_bits=wbits)
    return akida.FullyConnected(lay["units"], weights_bits=wbits, activation=not last, act_bits=bits or 4)


def _engine_weights(lay: dict, w: np.ndarray, shape: tuple, version: int) -> np.ndarray:
    """The project's weights in the engine's layout ``shape``.

    A dense layer reads a map flattened as (H, W, C) on Akida 2 (``Dense1D``) and as (C, W, H) on
    Akida 1 (``FullyConnected``), both found by probing the engine.
    """
    if lay["kind"] == "conv":
        return np.ascontiguousarray(w[:, :, ::-1, ::-1].transpose(2, 3, 1, 0)).reshape(shape)
    c, h, wd = lay["pre"]
    order = (2, 3, 1, 0) if version == 2 else (1, 3, 2, 0)
    return np.ascontiguousarray(w.reshape(w.shape[0], c, h, wd).transpose(order)).reshape(shape)


def _set(layer, name: str, value: np.ndarray, dtype) -> None:
    value = np.asarray(value)
    _fits(name, value, dtype)
    current = layer.get_variable(name)
    if current.shape != value.shape:
        raise ValueError(f"{name}: the engine holds shape {current.shape}, the case {value.shape}")
    layer.set_variable(name, value.astype(dtype))


def run_case(case: dict, chip: str) -> dict[str, np.ndarray]:
    """Every layer's output (``y{i}``, C-major) of one case."""
    import akida

    version = 1 if chip == "akida1" else 2
    layers = _layers(case)
    x = np.asarray(case["x"])
    c, h, w = layers[0]["pre"]
    n = x.shape[0]
    bits = int(case["input_bits"])
    engine_x = x.reshape(n, c, h, w).transpose(0, 2, 3, 1)
    engine_x = np.ascontiguousarray(engine_x).astype(np.int8 if bits > 4 else np.uint8)
    if not np.array_equal(engine_x.astype(np.int64), x.reshape(n, c, h, w).transpose(0, 2, 3, 1)):
        raise ValueError(f"inputs do not fit {bits} bits")
    outputs = {}
    for top in range(len(layers)):
        model = akida.Model()
        model.add(akida.InputData((h, w, c), input_bits=bits))
        for i, lay in enumerate(layers[:top + 1]):
            model.add(_engine_layer(akida, version, lay, i, case, last=i == len(layers) - 1))
            layer = model.layers[-1]
            _set(layer, "weights", _engine_weights(lay, np.asarray(case[f"w{i}"]),
                                                   layer.get_variable("weights").shape, version), np.int8)
            for name, dtype in VAR_TYPES.items():
                key = f"{PROJECT_NAMES[name]}{i}"
                if key in case and name in layer.get_variable_names():
                    _set(layer, name, case[key], dtype)
            if version == 1 and f"step{i}" in case and "act_step" in layer.get_variable_names():
                layer.set_variable("act_step", (np.asarray(case[f"step{i}"]) / 16.0).astype(np.float32))
        y = np.asarray(model.forward(engine_x)).astype(np.int64)
        lay = layers[top]
        expected = lay["units"]
        if lay["kind"] == "conv":
            _, ph, pw = lay["pre"]
            k, s, p = lay["kernel"], lay["stride"], lay["padding"]
            hw = ((ph + 2 * p - k) // s + 1, (pw + 2 * p - k) // s + 1)
            if tuple(y.shape[1:3]) != hw:
                raise ValueError(f"layer {top}: the engine's map is {y.shape[1:3]}, the project's {hw}")
            if s == 2 and p and (ph % 2 == 0 or pw % 2 == 0):
                raise ValueError(f"layer {top}: 'same' padding with stride 2 pads asymmetrically on even sizes")
        elif y.shape[-1] != expected:
            raise ValueError(f"layer {top}: {y.shape[-1]} outputs, expected {expected}")
        outputs[f"y{top}"] = y.transpose(0, 3, 1, 2).reshape(n, -1)
    return outputs


def _child(src: str, index: int, dst: str) -> None:
    with np.load(src, allow_pickle=False) as data:
        prefix = f"c{index}."
        case = {k[len(prefix):]: data[k] for k in data.files if k.startswith(prefix)}
        chip = str(data["chip"])
    np.savez(dst, **run_case(case, chip))


def main(src: str, dst: str) -> None:
    with np.load(src, allow_pickle=False) as data:
        heads = {k.split(".")[0] for k in data.files if "." in k}
        n = 1 + max((int(h[1:]) for h in heads if h[:1] == "c" and h[1:].isdigit()), default=-1)
    out = {"tool_version": np.array(importlib.metadata.version("akida"))}
    with tempfile.TemporaryDirectory(prefix="akida-driver-") as tmp:
        for i in range(n):
            part = os.path.join(tmp, f"{i}.npz")
            proc = subprocess.run([sys.executable, __file__, "--case", src, str(i), part],
                                  capture_output=True, text=True, timeout=600)
            if proc.returncode != 0 or not os.path.exists(part):
                tail = (proc.stderr or proc.stdout or f"exit status {proc.returncode}").strip().splitlines()
                out[f"c{i}.error"] = np.array(f"exit {proc.returncode}: " + (tail[-1] if tail else ""))
                continue
            with np.load(part) as res:
                out.update({f"c{i}.{k}": res[k] for k in res.files})
    tmp_dst = dst + ".tmp.npz"
    np.savez(tmp_dst, **out)
    os.replace(tmp_dst, dst)


if __name__ == "__main__":
    if sys.argv[1] == "--case":
        _child(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    else:
        main(sys.argv[1], sys.argv[2])
