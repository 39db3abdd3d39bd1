"""The spike filter (kernels/despike.py): its decisions are those of the straightforward
implementation it replaced, kept here verbatim as the reference (insertion sorts of every
neighbourhood and of every block's deviations), except where the Poisson floor of count
data binds; under a Poisson null it replaces nothing, and it finds spikes on 10 counts."""

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
@pytest.mark.parametrize(
    ("dtype", "poisson", "scale"),
    [
        (np.float32, 0, 1.0),  # counts, the floor turned off
        (np.uint16, 0, 1.0),
        (np.float32, -1, 1.37),  # not counts (fractions): no floor by default
    ],
)
def test_same_channels_as_the_old_rule(rng, window, n, dtype, poisson, scale):
    y = (_cube(rng, 300, n, dtype) * scale).astype(dtype)
    ref, ref_counts = np.empty(y.shape), np.empty(y.shape[0])
    old_despike_rows(y, 10.0, window, ref, ref_counts)
    clean, counts = np.empty(y.shape), np.empty(y.shape[0])
    despike_rows(y, 10.0, window, poisson, clean, counts)
    np.testing.assert_array_equal(clean, ref)  # the same channels, the same medians put in
    np.testing.assert_array_equal(counts, ref_counts)
    only = np.empty(y.shape[0])
    spike_counts(y, 10.0, window, poisson, only)
    np.testing.assert_array_equal(only, ref_counts)
    if n == 1024 and window == 5:  # the case must hold spikes, and spectra without
        assert 50 < (counts > 0).sum() < 250


@pytest.mark.parametrize("threshold", [3.0, 30.0])
def test_same_channels_at_other_thresholds(rng, threshold):
    y = _cube(rng, 200, 256, np.float64) + 0.25  # not counts
    ref, ref_counts = np.empty(y.shape), np.empty(y.shape[0])
    old_despike_rows(y, threshold, 5, ref, ref_counts)
    _, counts = hl.cl.despike_spectra(y, threshold=threshold)
    np.testing.assert_array_equal(counts, ref_counts)
    clean, _ = hl.cl.despike_spectra(y, threshold=threshold)
    np.testing.assert_array_equal(clean, np.where(counts[:, None] > 0, ref, y))


@pytest.mark.parametrize("window", [3, 5])
@pytest.mark.parametrize("dtype", [np.uint32, np.float64])
def test_high_counts_same_as_the_old_rule(rng, window, dtype):
    """At thousands of counts the block noise is above the Poisson floor wherever it
    matters: spikes of 1-3 channels either well under (0.5-3 sigma) or well over (30-300
    sigma) the threshold of 10 are found exactly as before."""
    npix, n = 300, 1024
    x = np.arange(n, dtype=np.float64)
    mu = 10 ** rng.uniform(3, 4.5, (npix, 1)) + 10 ** rng.uniform(3, 5, (npix, 1)) * np.exp(
        -0.5 * ((x - rng.uniform(0, n, (npix, 1))) / rng.uniform(2, 30, (npix, 1))) ** 2
    )
    y = rng.poisson(mu).astype(np.float64)
    for p in np.flatnonzero(rng.random(npix) < 0.5):
        for _ in range(rng.integers(1, 4)):
            i = int(rng.integers(0, n - 3))
            sigmas = rng.uniform(0.5, 3) if rng.random() < 0.5 else 10 ** rng.uniform(1.5, 2.5)
            y[p, i : i + rng.integers(1, 4)] += sigmas * np.sqrt(mu[p, i])
    y = np.rint(y).astype(dtype)
    ref, ref_counts = np.empty(y.shape), np.empty(npix)
    old_despike_rows(y, 10.0, window, ref, ref_counts)
    clean, counts = np.empty(y.shape), np.empty(npix)
    despike_rows(y, 10.0, window, -1, clean, counts)
    np.testing.assert_array_equal(clean, ref)
    np.testing.assert_array_equal(counts, ref_counts)
    assert 30 < (counts > 0).sum() < 150


MEANS = [0.5, 2, 5, 10, 50, 1000]


def _poisson_null(rng, mean, shape, npix=2000, n=1024):
    """Poisson spectra of ``mean`` counts, flat or with a peak 20x higher (sigma 2-30)."""
    if shape == "flat":
        return rng.poisson(mean, (npix, n))
    x = np.arange(n, dtype=np.float64)
    centre = rng.uniform(100, n - 100, (npix, 1))
    sigma = rng.uniform(2, 30, (npix, 1))
    return rng.poisson(mean + 20 * mean * np.exp(-0.5 * ((x - centre) / sigma) ** 2))


@pytest.mark.parametrize("mean", MEANS)
@pytest.mark.parametrize("shape", ["flat", "peaked"])
@pytest.mark.parametrize("dtype", [np.uint16, np.float64])
def test_poisson_null_nothing_replaced(rng, mean, shape, dtype):
    """Without spikes, under 0.1% of count spectra have a channel replaced (measured: none
    of 2000 in every case; the rule without the floor cut 100% at 0.5 counts, 4.8% at 2)."""
    y = _poisson_null(rng, mean, shape).astype(dtype)
    clean, counts = hl.cl.despike_spectra(y)
    assert (counts > 0).mean() < 1e-3
    assert clean is y or np.array_equal(clean[counts == 0], y[counts == 0])
    if mean <= 2:  # the case is one where the MAD noise alone fails
        _, plain = hl.cl.despike_spectra(y, counts=False)
        assert (plain > 0).mean() > 0.01


@pytest.mark.parametrize("shape", ["flat", "peaked"])
@pytest.mark.parametrize("dtype", [np.uint16, np.float32])
def test_spikes_on_ten_counts_all_found(rng, shape, dtype):
    """Spikes of one and two channels, 20x the local level, on 10-count spectra: every one
    found, replaced by a value near the level, nothing else touched."""
    npix, n = 1000, 1024
    x = np.arange(n, dtype=np.float64)
    if shape == "flat":
        mu = np.full((npix, n), 10.0)
    else:
        centre = rng.uniform(100, n - 100, (npix, 1))
        sigma = rng.uniform(5, 30, (npix, 1))
        mu = 10 + 40 * np.exp(-0.5 * ((x - centre) / sigma) ** 2)
    y = rng.poisson(mu).astype(np.float64)
    where = rng.integers(3, n - 4, npix)
    width = 1 + np.arange(npix) % 2
    spike = np.zeros((npix, n), bool)
    for p in range(npix):
        spike[p, where[p] : where[p] + width[p]] = True
    y[spike] += np.rint(20 * mu[spike])
    y = y.astype(dtype)
    clean, counts = hl.cl.despike_spectra(y)
    np.testing.assert_array_equal(counts, width)
    np.testing.assert_array_equal(clean != y, spike)
    level = mu[spike]
    assert np.all(np.abs(clean[spike] - level) < 5 * np.sqrt(level) + 2)


def test_which_spectra_are_counts(rng):
    """``counts=None`` floors the spectra whose finite values are whole numbers of at
    least 0 (NaN and inf do not decide); one fraction or one negative value is enough to
    take a spectrum as not counts."""
    y = rng.poisson(2.0, (400, 1024)).astype(np.float64)
    _, floored = hl.cl.despike_spectra(y, counts=True)
    _, plain = hl.cl.despike_spectra(y, counts=False)
    assert floored.sum() == 0 and (plain > 0).sum() > 5
    np.testing.assert_array_equal(hl.cl.despike_spectra(y)[1], floored)
    z = y.copy()
    z[0::4, 500] += 0.5  # fractions
    z[1::4, 500] = -1.0  # negative
    z[2::4, 500] = np.nan  # non-finite: ignored
    z[3::4, 500] = np.inf
    _, auto = hl.cl.despike_spectra(z)
    _, plain = hl.cl.despike_spectra(z, counts=False)
    expect = np.where(np.arange(400) % 4 < 2, plain, 0)
    assert expect.sum() > 0
    np.testing.assert_array_equal(auto, expect)
    signed = y.astype(np.int16)
    np.testing.assert_array_equal(hl.cl.despike_spectra(signed)[1], floored)
    signed[:, 500] = -1
    _, auto = hl.cl.despike_spectra(signed)
    np.testing.assert_array_equal(auto, hl.cl.despike_spectra(signed, counts=False)[1])


def test_counts_option_checked():
    y = np.ones((2, 50))
    with pytest.raises(TypeError, match="counts must be True, False or None .* got 'yes'"):
        hl.cl.despike_spectra(y, counts="yes")
    with pytest.raises(TypeError, match="counts must be True, False or None .* got 1"):
        hl.cl.remove_spikes(y, counts=1)
