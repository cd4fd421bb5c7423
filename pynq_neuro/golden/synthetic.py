"""Random integer networks and digits for tests and benches (numpy only)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .network import IMAGE_COLS, IMAGE_ROWS, IntegerNetwork, IntLayer


def random_network(seed: int | np.random.Generator = 0,
                   spec: Sequence[tuple[int, int, int]] = ((8, 3, 2), (6, 3, 2)),
                   wbits: int = 2, abits: int = 2, input_bits: int = 8,
                   density: float | None = None) -> IntegerNetwork:
    """A random valid network: hidden layers ``(out, taps, stride)`` from ``spec``, then a
    classifier over all remaining frames. ``density`` prunes every layer to about that share
    of synapses. Thresholds are drawn around the typical accumulator range so that activations
    are neither all 0 nor saturated. ``seed`` may be a generator, whose stream is continued."""
    rng = np.random.default_rng(seed)
    layers, channels, frames, in_max = [], IMAGE_COLS, IMAGE_ROWS, 2**input_bits - 1
    for i in range(len(spec) + 1):
        last = i == len(spec)
        out, taps, stride = (10, frames, 1) if last else spec[i]
        lo, hi = -(2 ** (wbits - 1)), 2 ** (wbits - 1)
        codes = rng.integers(lo, hi, (out, taps, channels))
        layer = IntLayer(channels, out, taps, stride, frames, wbits, codes)
        if density is not None:
            layer.mask = rng.random(codes.shape) < density
            layer.codes[~layer.mask] = 0
        if last:
            layer.bias = rng.integers(-50, 50, out)
        else:
            layer.act_bits = abits
            bound = layer.accumulator_bound(in_max)
            scale = max(1, int(np.sqrt(taps * channels)) * in_max * 2 ** (wbits - 1) // 4)
            th = np.sort(rng.integers(-scale, scale, (out, 2**abits - 1)), axis=1)
            layer.thresholds = np.clip(th, -bound, bound + 1)
            in_max = 2**abits - 1
        layers.append(layer)
        channels, frames = out, layer.out_frames
    name = f"tiny-{seed}" if isinstance(seed, int) else "random"
    net = IntegerNetwork(input_bits, layers, meta={"name": name})
    net.validate()
    return net


def random_digits(n: int, seed: int | np.random.Generator = 0,
                  zero_share: float = 0.7) -> np.ndarray:
    """``n`` random uint8 digits (N, 28, 28) in which about ``zero_share`` of the pixels are 0
    (sparse, like MNIST). ``seed`` may be a generator, whose stream is continued."""
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, (n, IMAGE_ROWS, IMAGE_COLS)).astype(np.uint8)
    img[rng.random(img.shape) < zero_share] = 0
    return img
