"""The spike filter (kernels/despike.py): its decisions are those of the straightforward
implementation it replaced, kept here verbatim as the reference (insertion sorts of every
neighbourhood and of every block's deviations)."""

import numba
import numpy as np
import pytest

import hyperlum as hl
from hyperlum.kernels.despike import NOISE_BLOCK, SHAPE, despike_rows, spike_counts


@numba.njit(cache=False)
def _old_mirror(j, n):
    while j < 0 or j >= n:
        if n == 1:
            return 0
        j = -j if j < 0 else 2 * (n - 1) - j
    return j


@numba.njit(cache=False)
def _old_sort(v, k):
    for i in range(1, k):
        t = v[i]
        j = i - 1
        while j >= 0 and v[j] > t:
            v[j + 1] = v[j]
            j -= 1
        v[j + 1] = t


@numba.njit(cache=False)
def old_despike_rows(data, threshold, window, clean, counts):
    """The rule as it was before the vectorised rewrite (commit ab4769d)."""
    npix, n = data.shape
    h = window // 2
    med = np.empty(n)
    dev = np.empty(n)
    low = np.empty(n)
    v = np.empty(max(window, NOISE_BLOCK))
    for p in range(npix):
        top = 0.0
        for i in range(n):
            if window == 5 and 2 <= i < n - 2:  # the default: upper median of 4, no sort
                a = float(data[p, i - 2])
                b = float(data[p, i - 1])
                c = float(data[p, i + 1])
                d = float(data[p, i + 2])
                m = max(min(max(a, b), max(c, d)), max(min(a, b), min(c, d)))
                low[i] = min(min(a, b), min(c, d))
            else:
                k = 0
                for j in range(i - h, i + h + 1):
                    if j != i:
                        v[k] = float(data[p, _old_mirror(j, n)])
                        k += 1
                _old_sort(v, k)
                m = v[k // 2]
                low[i] = v[0]
            med[i] = m
            dev[i] = float(data[p, i]) - m
            top = max(top, abs(m))
        floor = 1e-6 * top
        c = 0
        for b0 in range(0, n, NOISE_BLOCK):
            for k in range(NOISE_BLOCK):
                i = b0 + k
                if i >= n:
                    i = 2 * n - 1 - i
                    i = min(max(i, 0), n - 1)
                v[k] = abs(dev[i])
            # Exact shortcut: when 17 of the 32 deviations reach the largest one over
            # (threshold x 1.4826), the median does too and no channel of the block exceeds.
            big = 0.0
            for i in range(b0, min(b0 + NOISE_BLOCK, n)):
                big = max(big, dev[i])
            cut = big / (threshold * 1.4826) * (1.0 + 1e-12)
            above = 0
            for k in range(NOISE_BLOCK):
                if v[k] >= cut:
                    above += 1
            if above > NOISE_BLOCK // 2:
                for i in range(b0, min(b0 + NOISE_BLOCK, n)):
                    clean[p, i] = float(data[p, i])
                continue
            _old_sort(v, NOISE_BLOCK)
            noise = 1.4826 * 0.5 * (v[NOISE_BLOCK // 2 - 1] + v[NOISE_BLOCK // 2])
            limit = threshold * max(noise, floor)
            for i in range(b0, min(b0 + NOISE_BLOCK, n)):
                y = float(data[p, i])
                if np.isfinite(y) and dev[i] > limit and dev[i] > SHAPE * (y - low[i]):
                    clean[p, i] = med[i]
                    c += 1
                else:
                    clean[p, i] = y
        counts[p] = c


def _cube(rng, npix, n, dtype):
    """Poisson spectra of one or two peaks (sigma 0.8-30 channels, up to 1e5 counts) on
    backgrounds from 0.05 to 500 counts, with spikes of one to three channels of all heights,
    zeros, ramps and a few non-finite channels (float only)."""
    x = np.arange(n, dtype=np.float64)
    bg = 10 ** rng.uniform(-1.3, 2.7, (npix, 1))
    mu = bg + 10 ** rng.uniform(0, 5, (npix, 1)) * np.exp(
        -0.5 * ((x - rng.uniform(0, n, (npix, 1))) / rng.uniform(0.8, 30, (npix, 1))) ** 2
    )
    mu += rng.uniform(0, 1, (npix, 1)) * x / n * bg
    y = rng.poisson(mu).astype(np.float64)
    spiked = rng.random(npix) < 0.5
    for p in np.flatnonzero(spiked):
        for _ in range(rng.integers(1, 4)):
            i = rng.integers(0, n)
            y[p, i : i + rng.integers(1, 4)] += 10 ** rng.uniform(0.5, 4)
    y[rng.random(npix) < 0.05] = 0.0
    if np.dtype(dtype).kind == "f":
        y[3, min(7, n - 1)] = np.nan
        y[4, n // 2] = np.inf
        y[5, :] = np.nan
    return y.astype(dtype)


@pytest.mark.parametrize("window", [3, 5, 7])
@pytest.mark.parametrize("n", [1024, 333, 4])
@pytest.mark.parametrize("dtype", [np.float32, np.uint16])
def test_same_channels_as_the_old_rule(rng, window, n, dtype):
    y = _cube(rng, 300, n, dtype)
    ref, ref_counts = np.empty(y.shape), np.empty(y.shape[0])
    old_despike_rows(y, 10.0, window, ref, ref_counts)
    clean, counts = np.empty(y.shape), np.empty(y.shape[0])
    despike_rows(y, 10.0, window, clean, counts)
    np.testing.assert_array_equal(clean, ref)  # the same channels, the same medians put in
    np.testing.assert_array_equal(counts, ref_counts)
    only = np.empty(y.shape[0])
    spike_counts(y, 10.0, window, only)
    np.testing.assert_array_equal(only, ref_counts)
    if n == 1024 and window == 5:  # the case must hold spikes, and spectra without
        assert 50 < (counts > 0).sum() < 250


@pytest.mark.parametrize("threshold", [3.0, 30.0])
def test_same_channels_at_other_thresholds(rng, threshold):
    y = _cube(rng, 200, 256, np.float64)
    ref, ref_counts = np.empty(y.shape), np.empty(y.shape[0])
    old_despike_rows(y, threshold, 5, ref, ref_counts)
    _, counts = hl.cl.despike_spectra(y, threshold=threshold)
    np.testing.assert_array_equal(counts, ref_counts)
    clean, _ = hl.cl.despike_spectra(y, threshold=threshold)
    np.testing.assert_array_equal(clean, np.where(counts[:, None] > 0, ref, y))
