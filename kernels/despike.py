"""Cosmic-ray spike filter, one pass per spectrum (CPU, numba).

The rule of :func:`hyperlum.cl.remove_spikes`: a channel is a spike when it stands above the
median of its ``window - 1`` neighbours (ends mirrored; of an even count the upper middle
value, as ``scipy.ndimage.median_filter``) by more than ``threshold`` times the local noise,
1.4826 times the median of the absolute deviations over blocks of ``NOISE_BLOCK`` channels
(the last block completed by mirroring, as ``numpy.pad(mode="symmetric")``), floored at 1e-6
of the largest neighbour median and, for count data, at the Poisson noise of the channel's
neighbour median, ``sqrt(max(median, 1))``, and when it rises within the window: its excess
over the neighbour median is more than ``SHAPE`` of its height over the lowest neighbour.

The top of a real peak of sigma 2 channels or more, however bright, fails that last test
(the ratio is at most 0.42 at sigma 2, 0.35 at 2.5, wherever the centre falls between
channels), a spike of one or two channels passes it (ratio near 1), so a bright line is not
clipped (nor noiseless or denoised data, where the local noise is near 0). A peak of sigma
near one channel centred between two channels looks like a two-channel spike and can be
cut. Spikes are replaced by the neighbour median.

The Poisson floor: at a few counts per channel most deviations from the neighbour median are
0 or 1, their median absolute deviation is 0 or far below the noise, and ordinary
fluctuations (6 counts on a background of 2.8) would pass for spikes. ``sqrt(mean)`` is the
spread of one channel; the deviation from a median of neighbours that are noisy too spreads
more, so the floor is a lower bound of what the MAD estimates on Poisson data: it never asks
more of a spike than a perfect estimate of the noise would, and at high counts, where the
MAD of 32 deviations is a fair estimate, it hardly ever binds. Count data: every spectrum
(``poisson=1``), none (0), or each spectrum whose finite values are all whole numbers of at
least 0 (-1; checked only where a decision needs it).

How it is computed (the decisions are those of the rule, bit for bit): one branch-free pass
over the channels gives the deviations from the neighbour median (for the default window of
5 the upper median of 4 by a min / max network, which vectorises). A block of
``NOISE_BLOCK`` channels where more than half the absolute deviations reach the largest
deviation over ``threshold x 1.4826`` holds no spike (its noise median reaches that value
too, so no deviation exceeds ``threshold`` times the noise): in most blocks that count is
all there is to do. Elsewhere the block's deviations are sorted for the noise, and the
lowest neighbour, the floor and the medians to put back are computed only where needed.
Under the Poisson floor (at least 1), a block whose largest deviation is within
``threshold`` holds no spike either: at low counts most blocks end there.
:func:`spike_counts` only counts, so that a caller copies and cleans only the spectra that
hold a spike.
"""

import numba
import numpy as np

NOISE_BLOCK = 32
#: A spike's excess over the neighbour median, as a share of its height over the lowest
#: neighbour, must exceed this (see the module notes).
SHAPE = 0.5


@numba.njit(cache=True, nogil=True)
def _mirror(j, n):
    while j < 0 or j >= n:
        if n == 1:
            return 0
        j = -j if j < 0 else 2 * (n - 1) - j
    return j


@numba.njit(cache=True, nogil=True)
def _sort(v, k):
    for i in range(1, k):
        t = v[i]
        j = i - 1
        while j >= 0 and v[j] > t:
            v[j + 1] = v[j]
            j -= 1
        v[j + 1] = t


@numba.njit(cache=True, nogil=True)
def _median_low(y, i, window, v):
    """The neighbour median of channel ``i`` and its lowest neighbour."""
    n = y.shape[0]
    if window == 5 and 2 <= i < n - 2:  # the default: upper median of 4, no sort
        a = float(y[i - 2])
        b = float(y[i - 1])
        c = float(y[i + 1])
        d = float(y[i + 2])
        return max(min(max(a, b), max(c, d)), max(min(a, b), min(c, d))), min(min(a, b), min(c, d))
    h = window // 2
    k = 0
    for j in range(i - h, i + h + 1):
        if j != i:
            v[k] = float(y[_mirror(j, n)])
            k += 1
    _sort(v, k)
    return v[k // 2], v[0]


@numba.njit(cache=True, nogil=True)
def _deviations(y, window, dev, v):
    """``dev[i]``: channel ``i`` minus its neighbour median (the interior of the default
    window in a loop without branches, which vectorises)."""
    n = y.shape[0]
    lo, hi = (2, max(2, n - 2)) if window == 5 else (n, n)
    for i in range(lo, hi):
        a = float(y[i - 2])
        b = float(y[i - 1])
        c = float(y[i + 1])
        d = float(y[i + 2])
        dev[i] = float(y[i]) - max(min(max(a, b), max(c, d)), max(min(a, b), min(c, d)))
    for i in range(min(lo, n)):
        dev[i] = float(y[i]) - _median_low(y, i, window, v)[0]
    for i in range(hi, n):
        dev[i] = float(y[i]) - _median_low(y, i, window, v)[0]


@numba.njit(cache=True, nogil=True)
def _top(y, window, v):
    """The largest absolute neighbour median of the spectrum."""
    top = 0.0
    for i in range(y.shape[0]):
        top = max(top, abs(_median_low(y, i, window, v)[0]))
    return top


@numba.njit(cache=True, nogil=True)
def _whole(y):
    """1 when every finite value of ``y`` is a whole number of at least 0 (counts), else 0."""
    bad = False
    for i in range(y.shape[0]):
        x = y[i]  # in its own type: twice as many float32 at once
        # NaN and +inf give NaN here (not > 0): non-finite channels do not decide
        bad |= (x - np.floor(x) > 0) | ((x < 0) & (x > -np.inf))
    return 0 if bad else 1


@numba.njit(cache=True, nogil=True, fastmath={"reassoc"})
def _count_at_least(v, cut):
    """How many of ``|v|`` reach ``cut``: a float sum, reassociated (exact in any order below
    2^53), so that the loop vectorises."""
    count = 0.0
    for i in range(v.shape[0]):
        count += 1.0 if abs(v[i]) >= cut else 0.0
    return count


@numba.njit(cache=True, nogil=True)
def _spikes(y, threshold, window, poisson, dev, v, where):
    """The spikes of one spectrum ``y``: their channels into ``where[:count]``; returns
    ``count``. ``poisson``: the count-data floor applies (1), not (0), or when every finite
    value of ``y`` is a whole number of at least 0 (-1). ``dev``: scratch of the
    spectrum's length; ``v``: of ``max(window, NOISE_BLOCK)``."""
    n = y.shape[0]
    _deviations(y, window, dev, v)
    floor = poisson  # -1: decided where it first matters (most spectra never need it)
    scale = 1.0 / (threshold * 1.4826)
    top = -1.0  # not yet computed: most spectra never need it
    count = 0
    for b0 in range(0, n, NOISE_BLOCK):
        b1 = min(b0 + NOISE_BLOCK, n)
        # (a view indexed from 0: dev[i] from i = b0 is checked for a negative index, numba's
        # wrap-around, channel by channel; with the count as floats the filter took 1.06
        # instead of 1.24 us a spectrum of 1024 channels, measured)
        block = dev[b0:b1]
        big = 0.0
        for i in range(b1 - b0):
            big = max(big, block[i])
        # With the floor the noise is at least 1: a block whose deviations stay within the
        # threshold holds no spike (at low counts most blocks end here).
        if big <= threshold and floor != 0:
            if floor < 0:
                floor = _whole(y)
            if floor:
                continue
        cut = big * scale * (1.0 + 1e-12)
        # Exact shortcut: when 17 of the 32 deviations reach the largest one over
        # (threshold x 1.4826), the median does too and no channel of the block exceeds.
        if b1 - b0 == NOISE_BLOCK:
            above = _count_at_least(block, cut)
        else:  # the last block, completed by mirroring
            above = 0.0
            for k in range(NOISE_BLOCK):
                i = min(max(2 * n - 1 - (b0 + k), 0), n - 1) if b0 + k >= n else b0 + k
                above += 1.0 if abs(dev[i]) >= cut else 0.0
        if above > NOISE_BLOCK // 2:
            continue
        for k in range(NOISE_BLOCK):
            i = b0 + k
            if i >= n:
                i = min(max(2 * n - 1 - i, 0), n - 1)
            v[k] = abs(dev[i])
        _sort(v, NOISE_BLOCK)
        noise = 1.4826 * 0.5 * (v[NOISE_BLOCK // 2 - 1] + v[NOISE_BLOCK // 2])
        if top < 0.0:
            top = _top(y, window, v)
        limit = threshold * max(noise, 1e-6 * top)
        for i in range(b0, b1):
            d = dev[i]
            if d > limit:
                x = float(y[i])
                if not np.isfinite(x):
                    continue
                med, low = _median_low(y, i, window, v)
                if not d > SHAPE * (x - low):
                    continue
                if floor < 0:
                    floor = _whole(y)
                if not floor or d > threshold * np.sqrt(max(med, 1.0)):
                    where[count] = i
                    count += 1
    return count


@numba.njit(nogil=True, inline="always")
def _filter_rows(data, threshold, window, poisson, clean, counts, write):
    n = data.shape[1]
    dev = np.empty(n)
    v = np.empty(max(window, NOISE_BLOCK))
    where = np.empty(n, dtype=np.int64)
    for p in range(data.shape[0]):
        y = data[p]
        c = _spikes(y, threshold, window, poisson, dev, v, where)
        counts[p] = c
        if write:
            for i in range(n):
                clean[p, i] = float(y[i])
            for k in range(c):
                clean[p, where[k]] = _median_low(y, where[k], window, v)[0]


@numba.njit(cache=True, nogil=True)
def spike_counts(data, threshold, window, poisson, counts):
    """The spikes of every row of ``data`` (pixels x channels), counted into ``counts``;
    nothing is copied. ``poisson``: the count-data noise floor on every row (1), on none
    (0), or on the rows whose finite values are all whole numbers of at least 0 (-1).

    Examples
    --------
    >>> y = np.array([[10.0, 11, 9, 10, 500, 10, 11, 9, 10, 10], [10.0] * 10])
    >>> counts = np.empty(2)
    >>> spike_counts(y, 10.0, 5, -1, counts)
    >>> counts.tolist()
    [1.0, 0.0]
    """
    clean = np.empty((0, 0))
    if window == 5:  # the default, compiled with the window known (3x faster)
        _filter_rows(data, threshold, 5, poisson, clean, counts, False)
    else:
        _filter_rows(data, threshold, window, poisson, clean, counts, False)


@numba.njit(cache=True, nogil=True)
def despike_rows(data, threshold, window, poisson, clean, counts):
    """Filter every row of ``data`` (pixels x channels) into ``clean`` (float64); spikes
    replaced per row into ``counts``; ``poisson`` as for :func:`spike_counts`.

    Examples
    --------
    >>> y = np.array([[10.0, 11, 9, 10, 500, 10, 11, 9, 10, 10]])
    >>> clean, counts = np.empty_like(y), np.empty(1)
    >>> despike_rows(y, 10.0, 5, -1, clean, counts)
    >>> clean[0, 4], counts[0]
    (np.float64(10.0), np.float64(1.0))
    """
    if window == 5:
        _filter_rows(data, threshold, 5, poisson, clean, counts, True)
    else:
        _filter_rows(data, threshold, window, poisson, clean, counts, True)
