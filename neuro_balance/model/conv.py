"""Convolutional, locally connected and pooled projections, and the `conv_net` builder.

Feature maps are populations with ``shape = (C, H, W)``; their activity is the C-major flattening
``(batch, C*H*W)``. Two kinds are registered on import:

``conv2d``
    ``weight`` of shape ``(C_out, C_in // groups, kh, kw)``, shared by every output position, so
    both ends must be grouped by channel (``size == C``): the scale of a channel is shared by all of
    its positions, as weight sharing requires. ``groups`` splits the channels into independent
    blocks (``groups == C_in == C_out`` is a depthwise convolution); kernel slice ``[o, c]`` reads
    the true pre channel ``(o // (C_out // groups)) * (C_in // groups) + c``.
``locally_connected``
    Untied kernels, ``weight`` of shape ``(C_out, H_out, W_out, C_in, kh, kw)``. The post map may
    give every position its own unit (``size == C*H*W``, the usual case) or be grouped by channel.
    The pre map may be grouped by channel, or per-position when there is no padding and no pooling
    (then every weight joins exactly one pre position).

Options (``Projection.options``, plain YAML values)::

    kernel:  int or [kh, kw]              required
    stride:  int or [sh, sw]              default 1
    padding: int or [ph, pw]              default 0 (zeros on both sides)
    groups:  int                          default 1 (conv2d only)
    pool:    {kind: max | avg | sum, size: int or [k, k], stride: int or [s, s] (default size)}

``pool`` is applied to the pre map before the weights (then padding, then the kernel). Max and
average pooling are positively homogeneous per channel (``pool(lam x) = lam pool(x)`` for
``lam > 0``), so a channel-grouped pre map scales exactly through them; pooling a per-position map
is refused because one pooled value mixes units with different scales.

A dense projection fed by a feature map needs no kind of its own: `kinds.Dense` reads the C-major
flattening, so feature ``f`` belongs to channel ``f // (H*W)``.

Examples
--------
>>> import neuro_balance as nb, numpy as np
>>> from neuro_balance.model.conv import conv_net
>>> net = conv_net((1, 8, 8), [{"channels": 4, "kernel": 3, "padding": 1,
...                             "pool": {"kind": "max", "size": 2}}], dense=[8], n_out=3)
>>> net.populations["h1"].shape, net.populations["h1"].size
((4, 4, 4), 4)
>>> x = np.random.default_rng(0).normal(size=(2, 64))
>>> u = {"h1": np.log([1.0, 2.0, 0.5, 3.0])}
>>> bool(np.allclose(nb.scale(net, u).forward(x), net.forward(x), rtol=1e-12, atol=1e-12))
True
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import ModelError
from .conv_geometry import (POOL_KINDS, Geometry, Pool, _check_maps, _check_out_hw, _fold, _input_map, _input_vjp,
                            _ints, _padded_hw, _parse_pool, _per_position, _windows, geometry)
from ..seeding import check_random_state
from .kinds import register_kind
from .network import Network, Population, Projection

__all__ = ["Conv2d", "LocallyConnected", "Geometry", "Pool", "geometry", "conv_net", "POOL_KINDS"]


# ---------------------------------------------------------------------------------------- kinds
@dataclass(frozen=True)
class Conv2d:
    """Shared-kernel 2-D cross-correlation between channel-grouped feature maps.

    ``y[b, o, r, s] = sum_(c, i, j) W[o, c, i, j] * xp[b, g*Cg + c, r*sh + i, s*sw + j]`` with
    ``g = o // (C_out // groups)``, ``Cg = C_in // groups`` and ``xp`` the pooled, zero-padded pre map.
    Parameter ``W[o, c, i, j]`` joins post channel ``o`` and pre channel ``g*Cg + c``: a whole
    kernel slice is one edge of the cost graph (theory §3.4: one scale per channel).
    """

    name: str = "conv2d"

    def expected_shape(self, proj, pre, post):
        _check_maps(self.name, pre, post)
        geo = geometry(proj.options, pre.shape)
        if _per_position(pre):
            raise ModelError(f"pre.size: {pre.name!r} has one unit per position ({pre.size}); a shared kernel "
                             f"cannot be scaled exactly per position: give it size {pre.shape[0]} (one unit per "
                             "channel) or use kind locally_connected")
        if _per_position(post):
            raise ModelError(f"post.size: {post.name!r} has one unit per position ({post.size}); a shared kernel "
                             f"cannot be scaled exactly per position: give it size {post.shape[0]} (one unit per "
                             "channel) or use kind locally_connected")
        c_in, c_out = pre.shape[0], post.shape[0]
        for end, channels in (("pre", c_in), ("post", c_out)):
            if channels % geo.groups:
                raise ModelError(f"options.groups: {geo.groups} does not divide the {channels} channels of "
                                 f"{end} population {(pre if end == 'pre' else post).name!r}")
        _check_out_hw(geo, post)
        return (c_out, c_in // geo.groups) + geo.kernel

    def _parts(self, proj, pre, x):
        geo = geometry(proj.options, pre.shape)
        maps, padded = _input_map(geo, x)
        G = geo.groups
        # im2col per group, samples and positions together: (G, Cg*kh*kw, B*Ho*Wo), so each group
        # is one large matrix product with its kernels (G, C_out/G, Cg*kh*kw).
        win = _windows(padded, geo.kernel, geo.stride)
        B, C, Ho, Wo, kh, kw = win.shape
        cols = win.reshape(B, G, C // G, Ho, Wo, kh, kw).transpose(1, 2, 5, 6, 0, 3, 4).reshape(G, -1, B * Ho * Wo)
        kernels = proj.weight.reshape(G, proj.weight.shape[0] // G, -1)
        return geo, maps, cols, kernels

    def propagate(self, proj, pre, post, x):
        _, _, cols, kernels = self._parts(proj, pre, x)
        y = np.matmul(kernels, cols)  # (G, C_out/G, B*Ho*Wo)
        G, Og, _ = y.shape
        return y.reshape(G, Og, x.shape[0], -1).transpose(2, 0, 1, 3).reshape(x.shape[0], -1)

    def vjp(self, proj, pre, post, x, grad):
        geo, maps, cols, kernels = self._parts(proj, pre, x)
        G, Og, _ = kernels.shape
        B = x.shape[0]
        Ho, Wo = geo.out_hw
        g = grad.reshape(B, G, Og, Ho * Wo).transpose(1, 2, 0, 3).reshape(G, Og, -1)
        grad_w = np.matmul(g, cols.transpose(0, 2, 1)).reshape(proj.weight.shape)
        gcols = np.matmul(kernels.transpose(0, 2, 1), g)  # (G, Cg*kh*kw, B*Ho*Wo)
        C = geo.in_shape[0]
        kh, kw = geo.kernel
        gwin = gcols.reshape(G, C // G, kh, kw, B, Ho, Wo).transpose(4, 0, 1, 5, 6, 2, 3).reshape(B, C, Ho, Wo, kh, kw)
        return grad_w, _input_vjp(geo, maps, _fold(gwin, _padded_hw(geo), geo.stride))

    def groups(self, proj, pre, post):
        c_out, cg = proj.weight.shape[:2]
        G = int(proj.options.get("groups", 1))
        o = np.arange(c_out)[:, None, None, None]
        c = np.arange(cg)[None, :, None, None]
        return o, (o // (c_out // G)) * cg + c


@dataclass(frozen=True)
class LocallyConnected:
    """Untied kernels: one kernel per output position.

    ``y[b, o, r, s] = sum_(c, i, j) W[o, r, s, c, i, j] * xp[b, c, r*sh + i, s*sw + j]`` with ``xp`` the
    pooled, zero-padded pre map. Parameter ``W[o, r, s, c, i, j]`` joins post unit ``(o, r, s)`` (or
    channel ``o`` if the post map is grouped by channel) and pre channel ``c`` (or pre position
    ``(c, r*sh + i, s*sw + j)`` if the pre map is per-position, which needs no padding and no pool).
    """

    name: str = "locally_connected"

    def expected_shape(self, proj, pre, post):
        _check_maps(self.name, pre, post)
        geo = geometry(proj.options, pre.shape, allow_groups=False)
        if _per_position(pre):
            if geo.pool is not None:
                raise ModelError(f"options.pool: pre population {pre.name!r} has one unit per position; pooling "
                                 "mixes units with different scales (give it one unit per channel)")
            if any(geo.padding):
                raise ModelError(f"options.padding: pre population {pre.name!r} has one unit per position; weights "
                                 f"on padding (got {list(geo.padding)}) would join no pre unit (use padding 0)")
        _check_out_hw(geo, post)
        return (post.shape[0],) + geo.out_hw + (pre.shape[0],) + geo.kernel

    def _parts(self, proj, pre, x):
        geo = geometry(proj.options, pre.shape, allow_groups=False)
        maps, padded = _input_map(geo, x)
        win = _windows(padded, geo.kernel, geo.stride)
        B, C, Ho, Wo, kh, kw = win.shape
        cols = win.transpose(2, 3, 0, 1, 4, 5).reshape(Ho * Wo, B, C * kh * kw)  # per position: (B, C*kh*kw)
        kernels = proj.weight.reshape(proj.weight.shape[0], Ho * Wo, -1).transpose(1, 0, 2)  # (Ho*Wo, O, C*kh*kw)
        return geo, maps, cols, kernels

    def propagate(self, proj, pre, post, x):
        geo, _, cols, kernels = self._parts(proj, pre, x)
        y = np.matmul(cols, kernels.transpose(0, 2, 1))  # (Ho*Wo, B, O)
        return y.transpose(1, 2, 0).reshape(x.shape[0], -1)

    def vjp(self, proj, pre, post, x, grad):
        geo, maps, cols, kernels = self._parts(proj, pre, x)
        B = x.shape[0]
        O = proj.weight.shape[0]
        Ho, Wo = geo.out_hw
        g = grad.reshape(B, O, Ho * Wo).transpose(2, 0, 1)  # (Ho*Wo, B, O)
        grad_w = np.matmul(g.transpose(0, 2, 1), cols).transpose(1, 0, 2).reshape(proj.weight.shape)
        gcols = np.matmul(g, kernels)  # (Ho*Wo, B, C*kh*kw)
        C = geo.in_shape[0]
        gwin = gcols.reshape(Ho, Wo, B, C, *geo.kernel).transpose(2, 3, 0, 1, 4, 5)
        return grad_w, _input_vjp(geo, maps, _fold(gwin, _padded_hw(geo), geo.stride))

    def groups(self, proj, pre, post):
        O, Ho, Wo, C, kh, kw = proj.weight.shape
        if _per_position(post):
            post_idx = np.arange(O * Ho * Wo).reshape(O, Ho, Wo, 1, 1, 1)
        else:
            post_idx = np.arange(O).reshape(O, 1, 1, 1, 1, 1)
        if not _per_position(pre):
            return post_idx, np.arange(C).reshape(1, 1, 1, C, 1, 1)
        sh, sw = _ints(proj.options.get("stride", 1), "options.stride", 1)
        _, H, W = pre.shape
        rows = (np.arange(Ho)[:, None] * sh + np.arange(kh)[None, :]).reshape(1, Ho, 1, 1, kh, 1)
        cols = (np.arange(Wo)[:, None] * sw + np.arange(kw)[None, :]).reshape(1, 1, Wo, 1, 1, kw)
        chan = np.arange(C).reshape(1, 1, 1, C, 1, 1)
        return post_idx, (chan * H + rows) * W + cols


register_kind(Conv2d())
register_kind(LocallyConnected())


# ---------------------------------------------------------------------------------------- builder
_LAYER_KEYS = ("channels", "kind", "kernel", "stride", "padding", "groups", "pool", "per_position")


def _layer_options(spec: Mapping[str, Any], k: int) -> tuple[str, int, dict[str, Any], bool]:
    unknown = sorted(set(spec) - set(_LAYER_KEYS))
    if unknown:
        raise ModelError(f"layers[{k}]: unknown key(s) {unknown}; known: {list(_LAYER_KEYS)}")
    if "channels" not in spec:
        raise ModelError(f"layers[{k}].channels: required")
    kind = spec.get("kind", "conv2d")
    if kind not in ("conv2d", "locally_connected"):
        raise ModelError(f"layers[{k}].kind: must be conv2d or locally_connected, got {kind!r}")
    channels = _ints(spec["channels"], f"layers[{k}].channels", 1, count=1)[0]
    options: dict[str, Any] = {"kernel": list(_ints(spec.get("kernel", 3), f"layers[{k}].kernel", 1))}
    for key, default, minimum in (("stride", 1, 1), ("padding", 0, 0)):
        options[key] = list(_ints(spec.get(key, default), f"layers[{k}].{key}", minimum))
    if kind == "conv2d":
        options["groups"] = _ints(spec.get("groups", 1), f"layers[{k}].groups", 1, count=1)[0]
    elif spec.get("groups", 1) != 1:
        raise ModelError(f"layers[{k}].groups: locally_connected layers have no channel groups")
    if spec.get("pool") is not None:
        pool = _parse_pool(spec["pool"])
        options["pool"] = {"kind": pool.kind, "size": list(pool.size), "stride": list(pool.stride)}
    per_position = bool(spec.get("per_position", kind == "locally_connected"))
    if per_position and kind == "conv2d":
        raise ModelError(f"layers[{k}].per_position: a conv2d layer shares its kernel over positions, so its "
                         "units are channels")
    return kind, channels, options, per_position


def conv_net(input_shape: Sequence[int], layers: Sequence[Mapping[str, Any]], dense: Sequence[int] = (),
             n_out: int = 10, activation: str = "relu", bias: bool = True,
             skips: Sequence[tuple[int, int]] = (), seed: int | np.random.Generator = 0,
             output_activation: str = "linear", name: str = "conv_net") -> Network:
    """A convolutional network: feature maps, then a dense head, plus optional dense skip projections.

    Populations are ``in`` (the input map, one unit per channel), ``h1 .. hL`` (one feature map per
    entry of ``layers``), ``h(L+1) ..`` (dense hidden layers) and ``out``. The first dense layer reads
    the C-major flattening of the last map. Weights are He-initialised (std ``sqrt(2 / fan_in)``).

    Parameters
    ----------
    input_shape : (C, H, W)
    layers : sequence of mapping
        One feature map each: ``channels`` (required), ``kind`` (``conv2d`` or
        ``locally_connected``), ``kernel`` (default 3), ``stride`` (1), ``padding`` (0), ``groups``
        (conv2d, 1), ``pool`` (``{"kind": "max"|"avg"|"sum", "size": k, "stride": s}``), ``per_position``
        (locally_connected, default True: every position of the map is its own unit).
    dense : sequence of int
        Sizes of the dense hidden layers.
    n_out : int
    activation : str
        Activation of every hidden population.
    bias : bool
        One bias per unit (per channel for channel-grouped maps).
    skips : sequence of (int, int)
        Dense projections from population ``i`` to a later vector population ``j > i + 1`` (indices:
        0 = ``in``, then the maps, the dense layers and ``out``); a map source is read flattened.
    seed : int or numpy.random.Generator
    output_activation, name : str

    Returns
    -------
    Network

    Examples
    --------
    >>> net = conv_net((3, 8, 8), [{"channels": 6, "kernel": 3, "stride": 2, "padding": 1},
    ...                            {"channels": 6, "kernel": 3, "groups": 6}], dense=[16], n_out=4,
    ...                skips=[(1, 4)])
    >>> [(p.name, p.size, p.shape) for p in net.populations.values()]  # doctest: +NORMALIZE_WHITESPACE
    [('in', 3, (3, 8, 8)), ('h1', 6, (6, 4, 4)), ('h2', 6, (6, 2, 2)), ('h3', 16, None), ('out', 4, None)]
    """
    rng = check_random_state(seed)
    shape = _ints(list(input_shape), "input_shape", 1, count=3)
    pops = [Population("in", shape[0], "input", "linear", shape=shape)]
    projs = []
    for k, spec in enumerate(layers):
        kind, channels, options, per_position = _layer_options(spec, k)
        pre = pops[-1]
        geo = geometry(options, pre.shape, allow_groups=kind == "conv2d")
        out_shape = (channels,) + geo.out_hw
        size = channels * geo.out_hw[0] * geo.out_hw[1] if per_position else channels
        b = rng.normal(0.0, 0.1, size=size) if bias else None
        post = Population(f"h{k + 1}", size, "hidden", activation, b, shape=out_shape)
        if kind == "conv2d":
            wshape = (channels, pre.shape[0] // geo.groups) + geo.kernel
        else:
            wshape = (channels,) + geo.out_hw + (pre.shape[0],) + geo.kernel
        fan_in = int(np.prod(wshape[-3:]))
        projs.append(Projection(pre.name, post.name, rng.normal(0.0, np.sqrt(2.0 / fan_in), size=wshape),
                                kind=kind, options=options))
        pops.append(post)
    for k, n in enumerate(list(dense) + [n_out]):
        last = k == len(dense)
        b = rng.normal(0.0, 0.1, size=int(n)) if bias else None
        pop = Population("out" if last else f"h{len(pops)}", int(n), "output" if last else "hidden",
                         output_activation if last else activation, b)
        pre = pops[-1]
        projs.append(Projection(pre.name, pop.name, rng.normal(0.0, np.sqrt(2.0 / pre.n_features),
                                                               size=(pop.n_features, pre.n_features))))
        pops.append(pop)
    for i, j in skips:
        if not 0 <= i < j - 1 < len(pops) - 1:
            raise ModelError(f"skips: ({i}, {j}) is not a skip between populations 0..{len(pops) - 1}")
        if pops[j].shape is not None:
            raise ModelError(f"skips: ({i}, {j}) ends on feature map {pops[j].name!r}; skips end on vector "
                             "populations (dense layers or the output)")
        pre, post = pops[i], pops[j]
        projs.append(Projection(pre.name, post.name, rng.normal(0.0, np.sqrt(2.0 / pre.n_features),
                                                                size=(post.n_features, pre.n_features))))
    return Network(pops, projs, name)

