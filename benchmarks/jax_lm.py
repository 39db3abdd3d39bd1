"""A hand-written batched Levenberg-Marquardt fit of Gaussian + constant in JAX (float32).

The peer row "JAX batched LM" of ``bench_cpu.py``: the LM step of one pixel written with
``jax.numpy`` (analytic Jacobian, Marquardt damping, a step taken only when it lowers the sum
of squares), ``vmap``-ped over pixels and run for a fixed number of iterations under ``jit``.
"""

import numpy as np

try:
    import jax
    import jax.numpy as jnp
except ImportError:  # the row then says "not installed"
    jax = None

ITERATIONS = 30


def available():
    """True when JAX is installed."""
    return jax is not None


def _residual_and_jacobian(p, x, y):
    a, c, s, b = p[0], p[1], p[2], p[3]
    u = (x - c) / s
    e = jnp.exp(-0.5 * u * u)
    r = y - (a * e + b)
    J = jnp.stack([e, a * e * u / s, a * e * u * u / s, jnp.ones_like(e)], -1)
    return r, J


def _fit_one(p, lam, x, y):
    def step(_, state):
        p, lam = state
        r, J = _residual_and_jacobian(p, x, y)
        H = J.T @ J
        g = J.T @ r
        delta = jnp.linalg.solve(H + lam * jnp.diag(jnp.diag(H)), g)
        pt = p + delta
        pt = pt.at[2].set(jnp.abs(pt[2]))
        rt, _ = _residual_and_jacobian(pt, x, y)
        better = jnp.sum(rt * rt) < jnp.sum(r * r)
        return jnp.where(better, pt, p), jnp.where(better, 0.1 * lam, 10.0 * lam)

    return jax.lax.fori_loop(0, ITERATIONS, step, (p, lam))[0]


if jax is not None:
    _fit = jax.jit(jax.vmap(_fit_one, in_axes=(0, None, None, 0)))


def fit(flat, p0, x):
    """Fitted (A, c, s, b) of every row of ``flat`` (pixels x channels) from ``p0``."""
    out = _fit(
        jnp.asarray(p0, jnp.float32),
        jnp.float32(1e-3),
        jnp.asarray(x, jnp.float32),
        jnp.asarray(flat, jnp.float32),
    )
    return np.asarray(out.block_until_ready(), dtype=np.float64)
