"""The shared kernel maths, checked as plain Python (jit_all with the identity decorator)."""

import numpy as np
import pytest

from hyperlum.kernels.compile import jit_all
from hyperlum.kernels.constants import LSE, MAX_PARAMS, MLE

py = jit_all(lambda f: f)


class TestCholesky:
    def test_solves_like_numpy(self, rng):
        a = rng.normal(size=(5, 5))
        H = np.zeros((MAX_PARAMS, MAX_PARAMS))
        H[:5, :5] = a @ a.T + 5 * np.eye(5)
        b = rng.normal(size=MAX_PARAMS)
        L = np.zeros_like(H)
        out = np.zeros(MAX_PARAMS)
        assert py["cholesky"](H, 0.0, 5, L)
        py["cho_solve"](L, b, 5, out)
        np.testing.assert_allclose(out[:5], np.linalg.solve(H[:5, :5], b[:5]), rtol=1e-12)

    def test_damping_scales_the_diagonal(self, rng):
        H = np.diag([4.0, 9.0, 1.0])
        L = np.zeros((3, 3))
        assert py["cholesky"](H, 0.5, 3, L)
        np.testing.assert_allclose(np.diag(L) ** 2, 1.5 * np.diag(H))

    def test_not_positive_definite(self):
        H = np.array([[1.0, 2.0], [2.0, 1.0]])
        assert not py["cholesky"](H, 0.0, 2, np.zeros((2, 2)))


def test_log_positive_matches_numpy(rng):
    z = np.concatenate(
        [10.0 ** rng.uniform(-300, 300, 2000), rng.uniform(0.5, 2.0, 2000), [1.0, 2.0, 0.5]]
    )
    z = np.concatenate([z, np.nextafter(np.sqrt(2.0), [0.0, 3.0])])
    got = np.array([py["log_positive"](v) for v in z])
    np.testing.assert_allclose(got, np.log(z), rtol=6e-11, atol=0.0)
    assert py["log_positive"](1.0) == 0.0


def _accumulate(y, x, p, npk, nbg, est, h, block=16, scratch=None):
    """Objective, normal matrix, gradient and (least squares) sandwich middle at ``p``."""
    m = 3 * npk + nbg
    H = np.zeros((MAX_PARAMS, MAX_PARAMS))
    g = np.zeros(MAX_PARAMS)
    D = np.zeros((MAX_PARAMS, block))
    W = np.zeros((2, block))
    F = np.zeros(block)
    R = np.zeros(MAX_PARAMS)
    C = np.zeros((MAX_PARAMS, block)) if scratch is None else scratch
    chi2 = py["accumulate"](y, x, x.mean(), p, npk, nbg, est, H, g, R, h, D, W, F, C, 0)
    Q = np.zeros((MAX_PARAMS, MAX_PARAMS))
    py["accumulate"](y, x, x.mean(), p, npk, nbg, est, Q, g.copy(), R, h, D, W, F, C, 1)
    if est == LSE:
        # middle 2: the same normal matrix, and the sandwich middle beside it in columns m..2m-1
        wide = np.zeros((MAX_PARAMS, 2 * MAX_PARAMS))
        R[:] = 0.0
        chi2w = py["accumulate"](
            y, x, x.mean(), p, npk, nbg, est, wide, g.copy(), R, h, D, W, F, C, 2
        )
        assert chi2w == chi2
        np.testing.assert_allclose(wide[:m, :m], H[:m, :m], rtol=1e-13)
        np.testing.assert_allclose(wide[:m, m : 2 * m], Q[:m, :m], rtol=1e-13)
    return chi2, H[:m, :m], g[:m], Q[:m, :m]


def _model(x, p, npk, nbg):
    xref = x.mean()
    f = np.zeros_like(x)
    for k in range(npk):
        a, c, s = p[3 * k : 3 * k + 3]
        f += a * np.exp(-0.5 * ((x - c) / s) ** 2)
    if nbg > 0:
        f += p[3 * npk]
    if nbg > 1:
        f += p[3 * npk + 1] * (x - xref)
    return f


class TestAccumulate:
    x = np.linspace(600.0, 800.0, 101)
    p = np.array([100.0, 690.0, 12.0, 60.0, 720.0, 8.0, 5.0, 0.02])

    def _jacobian(self, p, npk, nbg):
        m = 3 * npk + nbg
        J = np.empty((self.x.size, m))
        for a in range(m):
            step = 1e-6 * max(1.0, abs(p[a]))
            hi, lo = p[:m].copy(), p[:m].copy()
            hi[a] += step
            lo[a] -= step
            J[:, a] = (_model(self.x, hi, npk, nbg) - _model(self.x, lo, npk, nbg)) / (2 * step)
        return J

    @pytest.mark.parametrize("h", [0.0, 2.0], ids=["exp", "recurrence"])
    @pytest.mark.parametrize("npk,nbg", [(1, 0), (1, 1), (2, 2)])
    def test_lse_normal_equations(self, rng, npk, nbg, h):
        m = 3 * npk + nbg
        y = _model(self.x, self.p[:m], npk, nbg) + rng.normal(0, 1, self.x.size)
        chi2, H, g, Q = _accumulate(y, self.x, self.p[:m], npk, nbg, LSE, h)
        J = self._jacobian(self.p, npk, nbg)
        r = y - _model(self.x, self.p[:m], npk, nbg)
        np.testing.assert_allclose(chi2, np.sum(r**2), rtol=1e-10)
        np.testing.assert_allclose(H, J.T @ J, rtol=1e-5, atol=1e-6 * np.abs(J.T @ J).max())
        np.testing.assert_allclose(g, J.T @ r, rtol=1e-5, atol=1e-6 * np.abs(J.T @ r).max())
        meat = J.T @ (J * r[:, None] ** 2)
        np.testing.assert_allclose(Q, meat, rtol=1e-5, atol=1e-6 * np.abs(meat).max())

    def test_mle_deviance_and_fisher(self, rng):
        npk, nbg = 1, 1
        p = np.array([100.0, 700.0, 12.0, 5.0])
        f = _model(self.x, p, npk, nbg)
        y = rng.poisson(f).astype(float)
        chi2, H, g, _ = _accumulate(y, self.x, p, npk, nbg, MLE, 2.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            dev = 2 * np.sum(f - y + np.where(y > 0, y * np.log(y / f), 0.0))
        J = self._jacobian(p, npk, nbg)
        np.testing.assert_allclose(chi2, dev, rtol=1e-10)
        np.testing.assert_allclose(H, J.T @ (J / f[:, None]), rtol=1e-5, atol=1e-10)
        np.testing.assert_allclose(g, J.T @ ((y - f) / f), rtol=1e-5, atol=1e-8)

    def test_negative_model_is_outside_the_poisson_domain(self):
        p = np.array([100.0, 700.0, 12.0, -5.0])
        chi2, _, _, _ = _accumulate(np.ones_like(self.x), self.x, p, 1, 1, MLE, 2.0)
        assert chi2 == np.inf

    @pytest.mark.parametrize("block", [4, 16, 64])
    @pytest.mark.parametrize("descending", [False, True])
    def test_recurrence_matches_exponentials(self, block, descending):
        x = np.linspace(600.0, 800.0, 1001)
        x = x[::-1].copy() if descending else x
        # a wide peak, one starting inside a block, a narrow one (exponentials per channel)
        p = np.array([100.0, 690.0, 40.0, 60.0, 741.3, 3.0, 30.0, 650.0, 0.05, 5.0, 0.02])
        y = _model(x, p, 3, 2) * 1.01
        exact = _accumulate(y, x, p, 3, 2, LSE, 0.0, block)
        rec = _accumulate(y, x, p, 3, 2, LSE, x[1] - x[0], block)
        for a, b in zip(exact, rec, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-10 * np.abs(a).max())

    @pytest.mark.parametrize("sigma", [0.06, 0.5, 3.0, 30.0])
    def test_chains_stay_normal_numbers(self, sigma):
        """No subnormal value (slow on CPUs) in the recurrence chains, however narrow the peak."""
        x = np.linspace(600.0, 800.0, 1001)
        p = np.array([100.0, 700.0, sigma, 5.0])
        C = np.zeros((MAX_PARAMS, 64))
        _accumulate(_model(x, p, 1, 1), x, p, 1, 1, LSE, x[1] - x[0], 64, C)
        tiny = np.finfo(np.float64).tiny
        assert np.all((C == 0) | (np.abs(C) >= tiny))


@pytest.mark.parametrize("est", [LSE, MLE])
def test_float32_tiles_keep_the_objective_and_round_the_sums(rng, est):
    """The CPU's float32 tiles (``kernels.cpu.TILES``) against float64 ones: the objective
    identical (it is summed in float64), the normal matrix and the gradient to float32 rounding
    of the sums over a block."""
    from hyperlum.kernels.compile import jit_model
    from hyperlum.kernels.cpu import TILES, njit_shared

    acc32 = jit_model(njit_shared, constants={"TILE": TILES["polynomial"]})["accumulate"]
    x = np.linspace(600.0, 800.0, 1024)
    p = np.array([100.0, 700.0, 12.0, 60.0, 730.0, 8.0, 5.0, 0.02])
    y = rng.poisson(_model(x, p, 2, 2)).astype(float)
    block = 128
    out = []
    for fn, tile in ((py["accumulate"], np.float64), (acc32, np.float32)):
        H = np.zeros((MAX_PARAMS, 2 * MAX_PARAMS))
        g = np.zeros(MAX_PARAMS)
        D = np.zeros((MAX_PARAMS, block), tile)
        W = np.zeros((2, block), tile)
        C = np.zeros((MAX_PARAMS, block))
        R = np.zeros(MAX_PARAMS)
        middle = 2 if est == LSE else 0
        chi2 = fn(
            y, x, x.mean(), p, 2, 2, est, H, g, R, x[1] - x[0], D, W, np.zeros(block), C, middle
        )
        out.append((chi2, H[:8, :16], g[:8]))
    (chi64, H64, g64), (chi32, H32, g32) = out
    assert chi32 == pytest.approx(chi64, rel=1e-12)
    scale = np.sqrt(np.abs(np.diag(H64[:, :8])))
    rel = np.abs(H32[:, :8] - H64[:, :8]) / np.outer(scale, scale)
    assert rel.max() < 1e-6 and rel.max() > 0.0  # float32 sums, rounded, and no worse
    if est == LSE:
        np.testing.assert_allclose(H32[:, 8:], H64[:, 8:], rtol=1e-5, atol=0.0)
    # the gradient against its noise (the square root of the sandwich middle's diagonal for
    # least squares, of the Fisher information's for the MLE): far below
    noise = np.sqrt(np.diag(H64[:, 8:] if est == LSE else H64[:, :8]))
    assert (np.abs(g32 - g64) / noise).max() < 1e-5


@pytest.fixture(scope="module")
def compiled_smoothed_max():
    """:func:`hyperlum.kernels.guess.smoothed_max` as the CPU driver compiles it."""
    from hyperlum.kernels.compile import jit_model
    from hyperlum.kernels.cpu import njit_shared

    return jit_model(njit_shared)["smoothed_max"]


class TestGuess:
    def test_single_peak_moments(self):
        x = np.linspace(600.0, 800.0, 801)
        y = 200 * np.exp(-0.5 * ((x - 712.0) / 10.0) ** 2) + 7.0
        p = np.zeros(MAX_PARAMS)
        assert not py["guess"](y, x, x.mean(), 1, 1, LSE, 0.01, np.inf, p)
        amp, centre, sigma, bg = p[:4]
        assert abs(centre - 712.0) < 0.5
        assert abs(sigma - 10.0) < 0.5
        assert abs(amp - 200.0) < 5.0
        assert abs(bg - 7.0) < 0.5

    def test_two_peaks_found(self):
        x = np.linspace(600.0, 800.0, 801)
        y = 200 * np.exp(-0.5 * ((x - 650.0) / 8.0) ** 2)
        y += 120 * np.exp(-0.5 * ((x - 740.0) / 12.0) ** 2)
        p = np.zeros(MAX_PARAMS)
        assert not py["guess"](y, x, x.mean(), 2, 0, LSE, 0.01, np.inf, p)
        assert sorted([round(p[1]), round(p[4])]) == [650, 740]

    def test_position_from_the_flanks_not_the_noisy_top(self, rng):
        """Poisson peaks of 100 counts: the midpoint of the three-quarter-height crossings
        starts closer than the maximum of the smoothed top (RMS 1.13 nm here), which wanders."""
        x = np.linspace(600.0, 800.0, 801)
        err = []
        for c in rng.uniform(680, 720, 40):
            y = rng.poisson(100 * np.exp(-0.5 * ((x - c) / 8.0) ** 2) + 5.0).astype(float)
            p = np.zeros(MAX_PARAMS)
            assert not py["guess"](y, x, x.mean(), 1, 1, LSE, 0.01, np.inf, p)
            err.append(p[1] - c)
        assert np.sqrt(np.mean(np.square(err))) < 0.8

    def test_merged_pair_keeps_the_maximum(self):
        """Two peaks merged above three-quarter height: the crossings' midpoint lies between
        them, so the first peak starts at the maximum and the second is still found."""
        x = np.linspace(600.0, 800.0, 801)
        y = 200 * np.exp(-0.5 * ((x - 690.0) / 10.0) ** 2)
        y += 150 * np.exp(-0.5 * ((x - 715.0) / 10.0) ** 2)
        p = np.zeros(MAX_PARAMS)
        assert not py["guess"](y, x, x.mean(), 2, 0, LSE, 0.01, np.inf, p)
        assert p[1] == x[np.argmax(y)]
        assert abs(p[4] - 715.0) < 5.0

    @pytest.mark.parametrize("channel", [0, 3, 400, 797, 800])
    @pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf, 1000.0])
    def test_bad_channel_anywhere_flags_the_pixel(self, channel, value):
        """The sweep checks every channel once: first, last, inside the first window, middle."""
        x = np.linspace(600.0, 800.0, 801)
        y = 200 * np.exp(-0.5 * ((x - 712.0) / 10.0) ** 2) + 7.0
        y[channel] = value
        p = np.zeros(MAX_PARAMS)
        assert py["guess"](y, x, x.mean(), 1, 1, LSE, 0.01, 1000.0, p)

    @pytest.mark.parametrize("n", [1, 2, 3, 5, 9, 12, 17, 40, 255, 256, 1024, 1031, 2048])
    def test_smoothed_max_is_the_first_maximum(self, rng, n, compiled_smoothed_max):
        """The four segments scanned side by side find what one scan of the clipped window means
        finds: the first channel of the largest value (ties included: integer counts on a flat
        top, a plateau at either end, maxima at the ends), as plain Python and compiled, and so
        does the one scan the CUDA driver compiles."""
        from hyperlum.kernels.compile import jit_model

        # one scan, as the CUDA driver compiles it
        one_segment = jit_model(lambda f: f, constants={"SCAN_SEGMENTS": 1})["smoothed_max"]
        x = np.linspace(600.0, 800.0, n)
        h = max(1, n // 256)
        p = np.zeros(MAX_PARAMS)
        p[3] = 2.0  # the background (1 peak + constant: its terms start at p[3])
        cases = [
            rng.poisson(3.0, n).astype(float),
            np.full(n, 5.0),
            np.where(np.arange(n) < n // 2, 1.0, 2.0),
            np.where(np.arange(n) >= n - 2, 9.0, 1.0),
            np.where(np.arange(n) < 2, 9.0, 1.0),
            rng.normal(0.0, 1.0, n),
        ]
        for y in cases:
            lo = np.maximum(np.arange(n) - h, 0)
            hi = np.minimum(np.arange(n) + h, n - 1)
            c = np.concatenate([[0.0], np.cumsum(y - 2.0)])
            smooth = (c[hi + 1] - c[lo]) / (hi - lo + 1)
            # the first maximum, up to the rounding of sums taken in another order
            want = int(np.flatnonzero(smooth >= smooth.max() - 1e-9)[0])
            for fn in (py["smoothed_max"], one_segment, compiled_smoothed_max):
                imax, rmax = fn(y, x, x.mean(), p, 0, 3, 1, h)
                assert imax == want
                assert rmax == pytest.approx(smooth.max(), abs=1e-9)

    def test_all_zero_spectrum_is_bad(self):
        x = np.linspace(600.0, 800.0, 801)
        assert py["guess"](np.zeros_like(x), x, x.mean(), 1, 1, LSE, 0.01, np.inf, np.zeros(14))


def test_cpu_driver_refuses_an_output_of_the_wrong_size():
    """The row loop writes without bounds checks: a wrong ``out`` is refused before it runs."""
    from hyperlum.kernels import cpu

    data = np.ones((5, 40))
    x = np.arange(40.0)
    with pytest.raises(
        ValueError, match=r"out must be float64 of shape \(13, 5\), got float64 \(12, 5\)"
    ):
        cpu.fit_chunk(data, x, 1, 1, LSE, 50, 1e-7, np.inf, np.empty((12, 5)))
    with pytest.raises(ValueError, match=r"got data \(5, 40\) and x \(39,\)"):
        cpu.fit_chunk(data, x[:-1], 1, 1, LSE, 50, 1e-7, np.inf, np.empty((13, 5)))
