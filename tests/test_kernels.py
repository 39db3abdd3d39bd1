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


def _accumulate(y, x, p, npk, nbg, est, h, block=16):
    m = 3 * npk + nbg
    H = np.zeros((MAX_PARAMS, MAX_PARAMS))
    g = np.zeros(MAX_PARAMS)
    D = np.zeros((MAX_PARAMS, block))
    W = np.zeros((3, block))
    R = np.zeros(MAX_PARAMS)
    chi2 = py["accumulate"](y, x, x.mean(), p, npk, nbg, est, H, g, R, h, D, W)
    return chi2, H[:m, :m], g[:m]


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
        chi2, H, g = _accumulate(y, self.x, self.p[:m], npk, nbg, LSE, h)
        J = self._jacobian(self.p, npk, nbg)
        r = y - _model(self.x, self.p[:m], npk, nbg)
        np.testing.assert_allclose(chi2, np.sum(r**2), rtol=1e-10)
        np.testing.assert_allclose(H, J.T @ J, rtol=1e-5, atol=1e-6 * np.abs(J.T @ J).max())
        np.testing.assert_allclose(g, J.T @ r, rtol=1e-5, atol=1e-6 * np.abs(J.T @ r).max())

    def test_mle_deviance_and_fisher(self, rng):
        npk, nbg = 1, 1
        p = np.array([100.0, 700.0, 12.0, 5.0])
        f = _model(self.x, p, npk, nbg)
        y = rng.poisson(f).astype(float)
        chi2, H, g = _accumulate(y, self.x, p, npk, nbg, MLE, 2.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            dev = 2 * np.sum(f - y + np.where(y > 0, y * np.log(y / f), 0.0))
        J = self._jacobian(p, npk, nbg)
        np.testing.assert_allclose(chi2, dev, rtol=1e-10)
        np.testing.assert_allclose(H, J.T @ (J / f[:, None]), rtol=1e-5, atol=1e-10)
        np.testing.assert_allclose(g, J.T @ ((y - f) / f), rtol=1e-5, atol=1e-8)

    def test_negative_model_is_outside_the_poisson_domain(self):
        p = np.array([100.0, 700.0, 12.0, -5.0])
        chi2, _, _ = _accumulate(np.ones_like(self.x), self.x, p, 1, 1, MLE, 2.0)
        assert chi2 == np.inf

    def test_recurrence_matches_exponentials(self):
        p = self.p.copy()
        y = _model(self.x, p[:8], 2, 2)
        exact = _accumulate(y * 1.01, self.x, p, 2, 2, LSE, 0.0)
        rec = _accumulate(y * 1.01, self.x, p, 2, 2, LSE, self.x[1] - self.x[0])
        for a, b in zip(exact, rec, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12 * np.abs(a).max())


class TestGuess:
    def test_single_peak_moments(self):
        x = np.linspace(600.0, 800.0, 801)
        y = 200 * np.exp(-0.5 * ((x - 712.0) / 10.0) ** 2) + 7.0
        p = np.zeros(MAX_PARAMS)
        py["guess"](y, x, x.mean(), 1, 1, LSE, 0.01, p)
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
        py["guess"](y, x, x.mean(), 2, 0, LSE, 0.01, p)
        assert sorted([round(p[1]), round(p[4])]) == [650, 740]
