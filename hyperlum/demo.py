"""The embedded demo: a synthetic STEM-CL spectrum image of perovskite particles in a glass.

:func:`make_demo` draws, from a seed, what the study that motivates hyperlum measured
(CsPbI3 nanocrystals sintered into a ZIF-62 glass): bright particles in a darker matrix on a
HAADF image, and at every pixel a CL spectrum with one Gaussian emission near 710 nm whose
width sigma is larger in a rim at the particle edge than in the particle core. Counts are
Poisson. The truth (particle labels, core and rim masks, the maps of the parameters) comes with
it, so every step of the analysis can be checked against what was put in.
"""

from typing import NamedTuple

import numpy as np

from hyperlum._validate import integer, positive

#: Defaults of the demo, in the units of the axes (nm).
DEMO_DEFAULTS = {
    "pixel_size": 5.0,  # nm per pixel
    "wavelength": (610.0, 810.0),  # nm, first and last channel
    "rim_width": 15.0,  # nm: the rim is the band this deep inside the particle edge
    "centre_core": 708.0,  # nm, mean over particles
    "centre_rim_shift": 3.0,  # nm, rim emission red-shifted by this much
    "sigma_core": 9.0,  # nm
    "sigma_rim": 13.0,  # nm
    "amplitude": (90.0, 220.0),  # counts per channel at the peak, range over particles
    "background": 4.0,  # counts per channel everywhere
}


class Demo(NamedTuple):
    """What :func:`make_demo` returns: ``signal, image, truth = make_demo()``."""

    signal: object  #: hyperspy Signal1D, the CL spectrum image (counts, uint16)
    image: object  #: hyperspy Signal2D, the HAADF image on the same pixel grid
    truth: dict  #: labels, masks and true parameter maps (numpy arrays), and the settings


def _ellipse_radius(phi, a, b, theta):
    """Distance from the centre to the edge of an ellipse along direction ``phi``."""
    t = phi - theta
    return a * b / np.sqrt((b * np.cos(t)) ** 2 + (a * np.sin(t)) ** 2)


def _place_particles(rng, shape, n, n_touching):
    """Centres, semi-axes and orientations (pixels): ``n`` particles, ``n_touching`` pairs touch."""
    ny, nx = shape
    size = min(ny, nx, 112)  # particles keep their size in pixels beyond 112
    rmin, rmax = 0.075 * size, 0.14 * size
    parts = []

    def fits(cy, cx, a, b, th):
        rr = max(a, b)
        if not (rr + 3 <= cy <= ny - rr - 4 and rr + 3 <= cx <= nx - rr - 4):
            return False
        for p in parts:
            d = np.hypot(cy - p[0], cx - p[1])
            if d < rr + max(p[2], p[3]) + 3:
                return False
        return True

    def draw_shape(aspect_max):
        r = rng.uniform(rmin, rmax)
        e = rng.uniform(1.0, aspect_max)
        return r * np.sqrt(e), r / np.sqrt(e), rng.uniform(0, np.pi)

    tries = 0
    while len(parts) < n:
        tries += 1
        if tries > 20000:
            raise ValueError(f"could not place {n} particles in a {ny}x{nx} image; ask fewer")
        pairs_done = sum(1 for p in parts if p[4] >= 0) // 2
        if pairs_done < n_touching and len(parts) + 2 <= n:
            a1, b1, t1 = draw_shape(1.15)
            a2, b2, t2 = draw_shape(1.15)
            cy, cx = rng.uniform(0, ny), rng.uniform(0, nx)
            phi = rng.uniform(0, 2 * np.pi)
            # centres so that the two edges overlap by ~1.5 px along the line joining them
            d = _ellipse_radius(phi, a1, b1, t1) + _ellipse_radius(phi + np.pi, a2, b2, t2) - 1.5
            cy2, cx2 = cy + d * np.sin(phi), cx + d * np.cos(phi)
            if fits(cy, cx, a1, b1, t1) and fits(cy2, cx2, a2, b2, t2):
                k = len(parts)
                parts.append((cy, cx, a1, b1, k + 1, t1))
                parts.append((cy2, cx2, a2, b2, k, t2))
            continue
        a, b, t = draw_shape(1.45)
        cy, cx = rng.uniform(0, ny), rng.uniform(0, nx)
        if fits(cy, cx, a, b, t):
            parts.append((cy, cx, a, b, -1, t))
    return [(p[0], p[1], p[2], p[3], p[5]) for p in parts]


def _rho(yy, xx, part):
    """Normalised radial coordinate of points in one particle: < 1 inside, 1 on its edge."""
    cy, cx, a, b, th = part
    dy, dx = yy - cy, xx - cx
    phi = np.arctan2(dy, dx)
    return np.hypot(dy, dx) / _ellipse_radius(phi, a, b, th)


def _labels(yy, xx, parts):
    """Label of the particle each point lies in (0 outside).

    Where two particles overlap, the point goes to the one of smaller power distance
    ``d**2 - r**2`` (``r`` the particle's radius in that direction): the plane through the
    intersection of two touching spheres, their grain boundary.
    """
    best = np.full(yy.shape, np.inf)
    lab = np.zeros(yy.shape, dtype=np.int32)
    for k, (cy, cx, a, b, th) in enumerate(parts, start=1):
        dy, dx = yy - cy, xx - cx
        r = _ellipse_radius(np.arctan2(dy, dx), a, b, th)
        power = dy * dy + dx * dx - r * r
        take = (power < 0) & (power < best)
        lab[take] = k
        best = np.where(take, power, best)
    return lab


def _depth(labels, pixel_size):
    """Depth of every particle pixel below its particle's edge (calibrated; 0 in the matrix).

    The edge lies half a pixel beyond the last pixel inside, as in :mod:`hyperlum.segment`.
    """
    from scipy import ndimage as ndi

    depth = np.zeros(labels.shape)
    for k in range(1, labels.max() + 1):
        inside = np.pad(labels == k, 1)
        d = ndi.distance_transform_edt(inside)[1:-1, 1:-1]
        sel = labels == k
        depth[sel] = (d[sel] - 0.5) * pixel_size
    return depth


def make_demo(shape=(112, 112), n_channels=512, *, n_particles=8, n_touching=2, seed=0):
    """Make the demo STEM-CL spectrum image, its HAADF image and the truth.

    Parameters
    ----------
    shape : (int, int)
        Pixels (rows, columns) of the map. At 5 nm per pixel.
    n_channels : int
        Spectral channels from 610 to 810 nm.
    n_particles : int
        Number of particles.
    n_touching : int
        How many pairs of these particles touch (the segmentation must split them).
    seed : int
        Seed of the random numbers: the same seed gives the same demo.

    Returns
    -------
    Demo
        ``(signal, image, truth)``. ``signal``: hyperspy Signal1D of Poisson counts (uint16),
        signal axis "Wavelength" in nm, navigation axes "y", "x" in nm. ``image``: hyperspy
        Signal2D, the HAADF image (counts) with the same calibration. ``truth``: a dict with
        ``labels`` (0 matrix, 1..n particles), boolean masks ``core`` and ``rim`` (particle
        pixels within ``rim_width`` of their particle's edge), ``depth`` (nm below the edge),
        the maps ``centre``, ``sigma``, ``amplitude``, ``background`` and the settings
        (``pixel_size``, ``rim_width``, ``sigma_core``, ``sigma_rim``, ...).

    Examples
    --------
    >>> signal, image, truth = make_demo(shape=(48, 48), n_channels=128, n_particles=3,
    ...                                  n_touching=1)
    >>> signal.data.shape, signal.axes_manager.signal_axes[0].units
    ((48, 48, 128), 'nm')
    >>> int(truth["labels"].max()), truth["sigma_core"] < truth["sigma_rim"]
    (3, True)
    """
    import hyperspy.api as hs
    from scipy import ndimage as ndi

    try:
        ny, nx = (int(v) for v in shape)
    except (TypeError, ValueError):
        raise TypeError(
            f"shape must be a pair of integers (rows, columns), got {shape!r}"
        ) from None
    integer("shape[0]", ny, 32, 4096)
    integer("shape[1]", nx, 32, 4096)
    n_channels = integer("n_channels", n_channels, 32, 8192)
    n_particles = integer("n_particles", n_particles, 1, 200)
    n_touching = integer("n_touching", n_touching, 0, n_particles // 2)
    cfg = dict(DEMO_DEFAULTS)
    px = positive("pixel_size", cfg["pixel_size"])
    rng = np.random.default_rng(seed)

    parts = _place_particles(rng, (ny, nx), n_particles, n_touching)
    yy, xx = np.mgrid[0:ny, 0:nx].astype(float)
    labels = _labels(yy, xx, parts)
    depth = _depth(labels, px)
    inside = labels > 0
    rim = inside & (depth < cfg["rim_width"])
    core = inside & ~rim

    # -- HAADF: flat-topped projected thickness, 4x4 supersampled edges, probe blur, Poisson --
    ss = 4
    sy, sx = np.mgrid[0 : ny * ss, 0 : nx * ss].astype(float)
    sy, sx = (sy + 0.5) / ss - 0.5, (sx + 0.5) / ss - 0.5
    thick = np.zeros((ny * ss, nx * ss))
    for p in parts:
        r = _rho(sy, sx, p)
        t = np.where(r < 1, np.minimum(1.0, 10.0 * np.sqrt(np.clip(1 - r * r, 0, 1))), 0.0)
        thick = np.maximum(thick, t * rng.uniform(0.85, 1.0))
    thick = thick.reshape(ny, ss, nx, ss).mean(axis=(1, 3))
    glass = 1.0 + 0.15 * ndi.gaussian_filter(rng.normal(size=(ny, nx)), 8.0) * 8.0
    haadf_mu = 220.0 * glass + 700.0 * thick
    haadf_mu = ndi.gaussian_filter(haadf_mu, 0.7)
    haadf = rng.poisson(haadf_mu).astype(np.float32)

    # -- CL parameters: per-particle level, rim broader and red-shifted, dimmer at the edge --
    n = len(parts)
    c_part = cfg["centre_core"] + rng.normal(0.0, 1.5, n)
    a_part = rng.uniform(*cfg["amplitude"], n)
    s_part = cfg["sigma_core"] + rng.normal(0.0, 0.3, n)
    step = 1.0 / (1.0 + np.exp((depth - cfg["rim_width"]) / (0.3 * px)))  # ~1 in rim, 0 in core
    lab0 = np.maximum(labels - 1, 0)
    centre = np.where(inside, c_part[lab0] + cfg["centre_rim_shift"] * step, np.nan)
    sigma = np.where(inside, s_part[lab0] + (cfg["sigma_rim"] - cfg["sigma_core"]) * step, np.nan)
    centre = centre + inside * rng.normal(0.0, 0.4, (ny, nx))
    sigma = sigma + inside * rng.normal(0.0, 0.3, (ny, nx))
    amplitude = np.where(inside, a_part[lab0] * (0.55 + 0.45 * (1.0 - step)), 0.0)
    background = np.full((ny, nx), cfg["background"])

    lo, hi = cfg["wavelength"]
    x = np.linspace(lo, hi, n_channels)
    mu = np.empty((ny, nx, n_channels))
    mu[:] = background[..., None]
    c = np.where(inside, centre, 0.0)[..., None]
    s = np.where(inside, sigma, 1.0)[..., None]
    mu += amplitude[..., None] * np.exp(-0.5 * ((x - c) / s) ** 2)
    counts = rng.poisson(mu).astype(np.uint16)

    dx = float(x[1] - x[0])
    nav = [
        {"name": "y", "units": "nm", "scale": px, "offset": 0.0, "size": ny},
        {"name": "x", "units": "nm", "scale": px, "offset": 0.0, "size": nx},
    ]
    sig_ax = {"name": "Wavelength", "units": "nm", "scale": dx, "offset": lo, "size": n_channels}
    signal = hs.signals.Signal1D(counts, axes=[*nav, sig_ax])
    signal.metadata.General.title = "hyperlum demo: CL of perovskite particles in glass"
    signal.metadata.set_item("Signal.quantity", "Counts")
    image = hs.signals.Signal2D(haadf, axes=[dict(a) for a in nav])
    image.metadata.General.title = "hyperlum demo: HAADF"
    image.metadata.set_item("Signal.quantity", "Counts")

    truth = dict(cfg)
    truth.update(
        labels=labels,
        core=core,
        rim=rim,
        depth=depth,
        centre=centre,
        sigma=sigma,
        amplitude=amplitude,
        background=background,
        n_particles=n,
        pixel_size=px,
        seed=seed,
    )
    return Demo(signal, image, truth)
