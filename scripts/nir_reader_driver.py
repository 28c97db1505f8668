"""Read two NIR files with a framework's own importer and count the spikes on which they differ.

    python scripts/nir_reader_driver.py snntorch|sinabs REFERENCE.nir CANDIDATE.nir [--seed S] [--steps T]

Runs in an environment with the framework, not the toolkit's (``tests/test_nir_readers.py`` calls it
there). sinabs 2.0.3 reads nir 1.0.8's files (sinabs 3 pins nir<=1.0.4, whose IF node has no
``v_reset``), so one environment holds both frameworks::

    python3 -m venv .vendor-venvs/interop
    .vendor-venvs/interop/bin/pip install torch==2.13.0    # the CPU build
    .vendor-venvs/interop/bin/pip install snntorch==1.0.0 sinabs==2.0.3 nir==1.0.8

Both files are imported (snnTorch: ``import_from_nir``; sinabs: ``from_nir``) and run on the same
random spike input (Bernoulli, p 0.5 for snnTorch's ``(T, batch, n)``, 0.4 for sinabs's
``(batch, T, C, H, W)``, numpy seed ``S``), recording the spikes of every spiking layer by forward
hooks. Prints one JSON object: the framework and its version, per layer the reference's spike count
and the number of (step, sample, neuron) entries where the two differ, or ``error`` with the
importer's message when it refuses the candidate.
"""
from __future__ import annotations

import argparse
import json

import nir
import numpy as np
import torch

BATCH = 4


def _input_shape(graph) -> tuple[int, ...]:
    inputs = [node for node in graph.nodes.values() if isinstance(node, nir.Input)]
    return tuple(int(n) for n in np.asarray(next(iter(inputs[0].input_type.values()))).ravel())


def _record(module, kinds) -> dict[str, list]:
    """Forward hooks on every submodule of a spiking class: its spikes at every call, by name."""
    spikes: dict[str, list] = {}
    for name, layer in module.named_modules():
        if isinstance(layer, kinds):
            spikes[name] = []
            layer.register_forward_hook(
                lambda _m, _i, out, name=name: spikes[name].append((out[0] if isinstance(out, tuple) else out).clone()))
    return spikes


def snntorch_spikes(path: str, steps: int, seed: int) -> dict[str, np.ndarray]:
    import snntorch
    from snntorch.import_nir import import_from_nir

    graph = nir.read(path)
    module = import_from_nir(graph)
    spikes = _record(module, snntorch.SpikingNeuron)
    rng = np.random.default_rng(seed)
    x = torch.from_numpy((rng.random((steps, BATCH, *_input_shape(graph))) < 0.5).astype(np.float32))
    state = None
    with torch.no_grad():
        for t in range(steps):
            _, state = module(x[t], state)
    return {name: torch.stack(values).numpy() for name, values in spikes.items()}


def sinabs_spikes(path: str, steps: int, seed: int) -> dict[str, np.ndarray]:
    from sinabs.layers import StatefulLayer
    from sinabs.nir import from_nir

    graph = nir.read(path)
    module = from_nir(graph, batch_size=BATCH)
    spikes = _record(module, StatefulLayer)
    for layer in module.modules():
        if isinstance(layer, StatefulLayer):
            layer.reset_states()
    rng = np.random.default_rng(seed)
    x = torch.from_numpy((rng.random((BATCH, steps, *_input_shape(graph))) < 0.4).astype(np.float32))
    with torch.no_grad():
        module(x.reshape(BATCH * steps, *x.shape[2:]))  # sinabs folds time into the batch axis
    return {name: torch.cat(values).numpy() for name, values in spikes.items()}


READERS = {"snntorch": snntorch_spikes, "sinabs": sinabs_spikes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("framework", choices=sorted(READERS))
    parser.add_argument("reference")
    parser.add_argument("candidate")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--steps", type=int, default=40)
    args = parser.parse_args()
    package = __import__(args.framework)
    report = {"framework": args.framework, "version": package.__version__, "nir": nir.__version__,
              "torch": torch.__version__, "seed": args.seed, "steps": args.steps, "batch": BATCH}
    reference = READERS[args.framework](args.reference, args.steps, args.seed)
    try:
        candidate = READERS[args.framework](args.candidate, args.steps, args.seed)
    except (AssertionError, NotImplementedError, ValueError, KeyError, TypeError) as err:
        report["error"] = f"{type(err).__name__}: {err}"
    else:
        report["layers"] = {name: {"spikes": int(values.sum()),
                                   "differences": int(np.sum(values != candidate[name]))}
                            for name, values in reference.items()}
    print(json.dumps(report))


if __name__ == "__main__":
    main()
