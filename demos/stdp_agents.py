"""STDP and balancing agents together, in a plain Brian2 model the user wrote themselves.

The model is ordinary Brian2 code written without the toolkit: 100 Poisson inputs (5-25 Hz) -> 12
leaky integrate-and-fire neurons with a 3 ms refractory period -> 6 LIF outputs, both synapse sets
learning with pair-based STDP (``build_copy`` below). To carry balancing agents, the hidden group adds
the toolkit's declarations to its model (`agent_equations`: agent variables, events and the synapses'
balancing pathways) and `attach_balancing` starts the agents: every hidden neuron balances itself on
its own Poisson clock (20 Hz) while the network spikes and learns.

Two copies of the network see the very same input spikes, one with agents, one without. The figure
shows over time: each hidden neuron's log(in-cost / out-cost) (L2 costs of its incoming and outgoing
weights), the total cost sum w^2 (and, for the copy without agents, the least cost its weights could
have after balancing, `nb.balance`), the hidden neurons' rates and the output rates (the network's
rate function).

What balancing changes: each neuron's in- and out-costs become equal within its first events and
stay so while STDP keeps moving the weights, and the total cost stays at the least its current
weights allow; without agents STDP drives the costs further apart. Here every hidden neuron's
in-cost (100 inputs) starts ~15x its out-cost (6 outputs), so the agents scale its incoming weights
by lam ~ 0.5 and its outgoing ones by ~2. For a non-leaky integrate-and-fire neuron that would leave
the output rates exactly as they were; these are leaky neurons, and halving their mean drive takes
them from ~1.6x threshold to below it, far outside the high-rate regime where the exchange is
nearly exact (neuro_balance/sim/lif.py, benchmarks/lif_exchange.py), so hidden and output rates fall
(4 s run, seed 0: output rates ~30 Hz just after balancing against ~100 Hz without agents); STDP then
potentiates the weakened synapses while the agents keep every neuron balanced, and the outputs climb
back (82 Hz in the last second against 129 Hz). What it leaves alone: the model's equations, the
STDP rule (learning goes on), the input, and the ratios of the weights within a neuron's incoming
row and within its outgoing column (balancing rescales whole rows and columns).
Writes stdp_agents.png.

    python demos/stdp_agents.py --out demo_output [--duration 4]
"""
import argparse
import time
from pathlib import Path

import brian2 as b2
import numpy as np

import neuro_balance as nb

NAMESPACE = {
    "tau": 10 * b2.ms, "v_rest": -70 * b2.mV, "v_reset": -65 * b2.mV, "v_th": -54 * b2.mV,
    "taupre": 20 * b2.ms, "taupost": 20 * b2.ms, "wmax": 50 * b2.mV,
}
LIF = "dv/dt = (v_rest - v + I_drive)/tau : volt (unless refractory)\nI_drive : volt"
STDP = """w : volt
dapre/dt = -apre/taupre : volt (event-driven)
dapost/dt = -apost/taupost : volt (event-driven)
dApre : volt (shared)
dApost : volt (shared)"""
ON_PRE = "v_post += w\napre += dApre\nw = clip(w + apost, 0*mV, wmax)"
ON_POST = "apost += dApost\nw = clip(w + apre, 0*mV, wmax)"


def build_copy(P, agents=None, n_hidden=12, n_out=6, drive=0.0, out_threshold=None, learning=1.0, seed=0,
               suffix=""):
    """One copy of the plain Brian2 model fed by the input group ``P``: hidden LIFs, output LIFs, STDP synapses.

    ``agents`` (an `AgentEquations`) adds the toolkit's declarations to the hidden group and both
    synapse sets; nothing else changes. ``drive`` (mV) makes hidden neurons fire on their own,
    ``out_threshold`` (mV) overrides the outputs' threshold, ``learning`` scales the STDP amplitudes.
    Returns a dict of the objects.
    """
    rng = np.random.default_rng(seed)
    ns = dict(NAMESPACE)
    hidden_model, events = LIF, None
    if agents is not None:
        hidden_model, events = LIF + "\n" + agents.neuron, agents.events
    G = b2.NeuronGroup(n_hidden, hidden_model, threshold="v > v_th", reset="v = v_reset", refractory=3 * b2.ms,
                       events=events, method="exact", namespace=ns, name="hidden" + suffix)
    out_ns = dict(ns, v_th=out_threshold * b2.mV) if out_threshold is not None else ns
    O = b2.NeuronGroup(n_out, LIF, threshold="v > v_th", reset="v = v_reset", refractory=3 * b2.ms, method="exact",
                       namespace=out_ns, name="output" + suffix)
    G.v = (-70 + 10 * rng.random(n_hidden)) * b2.mV
    O.v = (-70 + 10 * rng.random(n_out)) * b2.mV
    G.I_drive = drive * (0.8 + 0.4 * rng.random(n_hidden)) * b2.mV

    def synapses(source, target, side, name):
        kwargs = {"on_pre": ON_PRE, "on_post": ON_POST}
        if agents is not None:
            kwargs = agents.synapses(**{side: True}, on_pre=ON_PRE, on_post=ON_POST)
        S = b2.Synapses(source, target, STDP, namespace=ns, name=name + suffix, **kwargs)
        # every pair, as arrays (i outer, as connect(p=1) makes them): cpp_standalone then knows len(S) before its run
        S.connect(i=np.repeat(np.arange(len(source)), len(target)), j=np.tile(np.arange(len(target)), len(source)))
        S.w = (0.5 + 2.5 * rng.random(len(S))) * b2.mV
        S.dApre = 0.01 * learning * b2.mV
        S.dApost = -0.0105 * learning * b2.mV
        return S

    return {"G": G, "O": O, "S_in": synapses(P, G, "post", "input_hidden"),
            "S_out": synapses(G, O, "pre", "hidden_output")}


def costs(w_in: np.ndarray, w_out: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """In- and out-cost (L2, weights in mV) of every hidden unit; ``w_in`` (samples, hidden, inputs)."""
    return (w_in ** 2).sum(axis=2), (w_out ** 2).sum(axis=1)


def dense(mon, S, shape) -> np.ndarray:
    """A weight monitor's samples as dense ``(samples, post, pre)`` arrays in mV."""
    out = np.zeros((len(mon.t), *shape))
    out[:, np.asarray(S.j[:]), np.asarray(S.i[:])] = np.asarray(mon.w_[:]).T * 1e3
    return out


def windowed_rates(spikes, n: int, edges: np.ndarray) -> np.ndarray:
    """Rates (Hz) of ``n`` units in the windows between ``edges``, ``(windows, n)``."""
    t, i = np.asarray(spikes.t_[:]), np.asarray(spikes.i[:])
    counts = np.stack([np.bincount(i[(t >= a) & (t < b)], minlength=n) for a, b in zip(edges[:-1], edges[1:])])
    return counts / np.diff(edges)[:, None]


def simulate(duration: float, rate: float, seed: int) -> dict:
    from neuro_balance.sim import agent_equations, attach_balancing
    b2.prefs.codegen.target = "numpy"
    b2.seed(seed)
    rng = np.random.default_rng(seed)
    P = b2.PoissonGroup(100, rates=rng.uniform(5, 25, 100) * b2.Hz, name="input")
    eq = agent_equations(nb.Lp(2), weight_unit=b2.mV)
    arms = {"with agents": build_copy(P, eq, learning=4.0, seed=seed),
            "without agents": build_copy(P, None, learning=4.0, seed=seed, suffix="_plain")}
    net = b2.Network(P)
    monitors = {}
    for name, objs in arms.items():
        net.add(*objs.values())
        monitors[name] = {k: b2.StateMonitor(objs[k], "w", record=True, dt=50 * b2.ms) for k in ("S_in", "S_out")}
        monitors[name].update(hidden=b2.SpikeMonitor(objs["G"]), output=b2.SpikeMonitor(objs["O"]))
        net.add(*monitors[name].values())
    G = arms["with agents"]["G"]
    agents = attach_balancing(net, [G], [arms["with agents"]["S_in"], arms["with agents"]["S_out"]], nb.Lp(2),
                              rate=rate * b2.Hz, weight_unit=b2.mV, seed=seed)
    start = time.perf_counter()
    net.run(duration * b2.second)
    print(f"simulated {duration:g} s in {time.perf_counter() - start:.0f} s; {len(agents.events)} balance events")
    out = {"t": np.asarray(monitors["with agents"]["S_in"].t_[:]), "edges": np.linspace(0, duration, 21)}
    for name, objs in arms.items():
        mon = monitors[name]
        w_in = dense(mon["S_in"], objs["S_in"], (12, 100))
        w_out = dense(mon["S_out"], objs["S_out"], (6, 12))
        out[name] = {"w_in": w_in, "w_out": w_out, "hidden": windowed_rates(mon["hidden"], 12, out["edges"]),
                     "output": windowed_rates(mon["output"], 6, out["edges"])}
    out["events"] = len(agents.events)
    return out


def least_cost(w_in: np.ndarray, w_out: np.ndarray) -> float:
    """The least total L2 cost these weights reach by balancing the hidden units (``nb.balance``)."""
    net = nb.Network([nb.Population("in", w_in.shape[1], "input", "linear"), nb.Population("h", w_in.shape[0]),
                      nb.Population("out", w_out.shape[0], "output", "linear")],
                     [nb.Projection("in", "h", w_in), nb.Projection("h", "out", w_out)])
    return float(nb.balance(net, nb.Lp(2), method="global", tol=1e-12).cost_after)


def plot(res: dict, path: Path) -> Path:
    from matplotlib.figure import Figure

    from neuro_balance.model.files import atomic_output
    fig = Figure(figsize=(12, 8), layout="constrained")
    (ax, bx), (cx, dx) = fig.subplots(2, 2)
    t, edges = res["t"], res["edges"]
    mid = (edges[:-1] + edges[1:]) / 2
    styles = {"with agents": ("tab:blue", "-"), "without agents": ("tab:red", "--")}
    for name, (colour, ls) in styles.items():
        r = res[name]
        A, B = costs(r["w_in"], r["w_out"])
        lines = ax.plot(t, np.log(A / B), color=colour, ls=ls, lw=0.8, alpha=0.7)
        lines[0].set_label(name)
        total = (r["w_in"] ** 2).sum(axis=(1, 2)) + (r["w_out"] ** 2).sum(axis=(1, 2))
        bx.plot(t, total, color=colour, ls=ls, label=f"{name}: sum w^2")
        cx.plot(mid, r["hidden"], color=colour, ls=ls, lw=0.8, alpha=0.6)
        cx.plot(mid, r["hidden"].mean(axis=1), color=colour, ls=ls, lw=2.5, label=f"{name} (mean: thick)")
        dx.plot(mid, r["output"], color=colour, ls=ls, lw=0.8, alpha=0.6)
        dx.plot(mid, r["output"].mean(axis=1), color=colour, ls=ls, lw=2.5, label=f"{name} (mean: thick)")
    plain = res["without agents"]
    bx.plot(t, [least_cost(a, b) for a, b in zip(plain["w_in"], plain["w_out"])], color="k", ls=":",
            label="without agents: least cost of its weights (nb.balance)")
    ax.set(xlabel="time (s)", ylabel="log(in-cost / out-cost)", title="each hidden neuron's cost balance (L2)")
    bx.set(xlabel="time (s)", ylabel="total cost (mV^2)", title="total cost of the weights")
    width = (edges[1] - edges[0]) * 1e3
    cx.set(xlabel="time (s)", ylabel="rate (Hz)", title=f"hidden LIF rates ({width:.0f} ms windows)")
    dx.set(xlabel="time (s)", ylabel="rate (Hz)", title="output LIF rates: the network's rate function")
    for x in (ax, bx, cx, dx):
        x.legend(fontsize=8)
    fig.suptitle(f"Pair-based STDP with and without balancing agents (same input spikes; {res['events']} balance "
                 "events; plain Brian2 LIF model, 100-12-6)")
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="demo_output", help="output directory")
    parser.add_argument("--duration", type=float, default=4.0, help="seconds simulated")
    parser.add_argument("--rate", type=float, default=20.0, help="balance events per hidden neuron per second")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    res = simulate(args.duration, args.rate, args.seed)
    for name in ("with agents", "without agents"):
        r = res[name]
        A, B = costs(r["w_in"], r["w_out"])
        total = (r["w_in"][-1] ** 2).sum() + (r["w_out"][-1] ** 2).sum()
        print(f"{name}: final max |log(in/out)| = {np.abs(np.log(A[-1] / B[-1])).max():.3f}, total cost "
              f"{total:.1f} mV^2 (least for these weights {least_cost(r['w_in'][-1], r['w_out'][-1]):.1f}), "
              f"hidden rate {r['hidden'][-5:].mean():.1f} Hz, output rate {r['output'][-5:].mean():.1f} Hz "
              "(last second)")
    print("wrote", plot(res, Path(args.out) / "stdp_agents.png"))


if __name__ == "__main__":
    main()
