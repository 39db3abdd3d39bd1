"""Shared fixtures: seeded random numbers, the real-data folder, small synthetic cubes."""

import os
from pathlib import Path

import numpy as np
import pytest

SHIPPED = Path(__file__).parents[1] / "data"
REAL = Path(os.environ.get("HYPERLUM_REAL_DATA", Path(__file__).parents[2] / "shared/data/real"))


@pytest.fixture
def rng():
    return np.random.default_rng(20261124)


@pytest.fixture
def real_file():
    """Path of a real data file: shipped in ``data/``, else in ``../shared/data/real``; the
    test is skipped when it is in neither."""

    def get(name):
        shipped = SHIPPED / name
        if shipped.is_file():
            return shipped
        path = REAL / name
        if not path.is_file():
            pytest.skip(f"real data file {name} not found in {REAL}")
        return path

    return get


def gaussian_cube(rng, shape, x, *, centre=(680, 740), sigma=(6, 20), amp=(40, 400), bg=(2, 20)):
    """Truth parameters and noiseless model for a cube of one Gaussian + constant."""
    truth = {
        "centre": rng.uniform(*centre, shape),
        "sigma": rng.uniform(*sigma, shape),
        "amplitude": rng.uniform(*amp, shape),
        "background": rng.uniform(*bg, shape),
    }
    mu = (
        truth["amplitude"][..., None]
        * np.exp(-0.5 * ((x - truth["centre"][..., None]) / truth["sigma"][..., None]) ** 2)
        + truth["background"][..., None]
    )
    return truth, mu
