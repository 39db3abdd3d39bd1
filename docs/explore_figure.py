"""Write docs/explore.png: hl.explore on the demo data, a pixel at a particle edge selected.

Run from the repository root: ``python docs/explore_figure.py``.
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402

import hyperlum as hl  # noqa: E402
from hyperlum.demo import make_demo  # noqa: E402

signal, haadf, truth = make_demo(shape=(64, 64), n_channels=256, n_particles=4, n_touching=1)
res = hl.fit(signal, estimator="mle", device="cpu", signal_range=(640.0, 785.0))
ex = hl.explore(signal, res, maps=("intensity", "centre", "sigma"), figsize=(12, 8.5))
good = hl.stats.quality_mask(res, min_snr=3) & (truth["labels"] > 0)
sigma = np.where(good, res.maps["sigma"], np.nan)
ex.select(*np.unravel_index(np.nanargmax(sigma), sigma.shape))
out = Path(__file__).with_name("explore.png")
ex.fig.savefig(out, dpi=90, bbox_inches="tight")
print(out)
