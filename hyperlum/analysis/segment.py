"""Particles and regions from an image: core, interface (rim), shell and matrix.

:func:`segment` finds bright particles on a HAADF image (or on a fitted intensity map):
Gaussian smoothing, a global threshold, hole filling, removal of small objects and a watershed
on the distance transform that splits touching particles. The regions are defined from each
particle's edge, in the calibrated units of the image:

* ``interface``: particle pixels whose centre lies less than ``interface_width`` inside the
  particle's edge (the rim);
* ``core``: the rest of the particle pixels;
* ``shell``: matrix pixels less than ``shell_width`` outside the nearest particle edge;
* ``matrix``: the other matrix pixels.

The edge of a particle is taken half a pixel beyond its last pixel, so that a width of three
pixels gives a rim three pixels thick.
"""

import numbers

import numpy as np

from hyperlum._validate import choice

REGIONS = ("core", "interface", "shell", "matrix")
_METHODS = ("otsu", "li", "yen", "triangle", "mean")


class Segmentation:
    """Particles found by :func:`segment` and the regions defined from them.

    Attributes
    ----------
    labels : numpy.ndarray of int32
        0 for the matrix, 1..n for the particles.
    pixel_size : float
        Calibrated size of a pixel (``units`` per pixel).
    units : str
        Units of ``pixel_size`` and of the widths (``"px"`` when the image had none).
    interface_width, shell_width : float
        Widths of the interface and shell bands, calibrated.
    threshold : float
        The threshold applied to the smoothed image.
    particles : pandas.DataFrame
        One row per particle (index: label): area, equivalent diameter, centroid (calibrated),
        pixel counts of its core and interface, and whether it touches the image border.
    noise : float
        The pixel noise of the image (robust standard deviation of neighbour differences).
    faint : int
        Candidates dropped as not credible (see ``min_contrast`` of :func:`segment`).
    """

    def __init__(
        self,
        labels,
        depth,
        outside,
        pixel_size,
        units,
        interface_width,
        shell_width,
        threshold,
        axes,
        *,
        noise=float("nan"),
        faint=0,
    ):
        self.labels = labels
        self.noise = noise
        self.faint = faint
        self.pixel_size = pixel_size
        self.units = units
        self.interface_width = interface_width
        self.shell_width = shell_width
        self.threshold = threshold
        self.axes = axes
        self._depth = depth
        self._outside = outside
        self.particles = self._table()

    @property
    def n(self):
        """Number of particles."""
        return int(self.labels.max(initial=0))

    @property
    def shape(self):
        """Shape of the label image."""
        return self.labels.shape

    @property
    def extent(self):
        """``(left, right, bottom, top)`` of the image in calibrated units, for ``imshow``."""
        (y, x) = self.axes
        h, w = self.labels.shape
        return (
            x["offset"] - 0.5 * x["scale"],
            x["offset"] + (w - 0.5) * x["scale"],
            y["offset"] + (h - 0.5) * y["scale"],
            y["offset"] - 0.5 * y["scale"],
        )

    def mask(self, name):
        """Boolean mask of a region.

        Parameters
        ----------
        name : {"core", "interface", "shell", "matrix", "particles"}
            ``"particles"`` is core and interface together.

        Returns
        -------
        numpy.ndarray of bool
        """
        choice("name", name, (*REGIONS, "particles"))
        inside = self.labels > 0
        if name == "particles":
            return inside
        if name == "interface":
            return inside & (self._depth < self.interface_width)
        if name == "core":
            return inside & ~(self._depth < self.interface_width)
        shell = ~inside & (self._outside < self.shell_width)
        return shell if name == "shell" else ~inside & ~shell

    @property
    def note(self):
        """Why no particle was kept, or ``""`` when some were."""
        if self.n:
            return ""
        if self.faint:
            return (
                f"{self.faint} candidate{'s' if self.faint > 1 else ''}, none a step above "
                "the noise taken at a sharp edge (a bump of noise, or a slope crossing the "
                "threshold)"
            )
        return "no region above the threshold was as large as min_area"

    def region_map(self):
        """Image of region codes: 0 matrix, 1 shell, 2 interface, 3 core."""
        out = np.zeros(self.labels.shape, dtype=np.int8)
        for code, name in enumerate(("matrix", "shell", "interface", "core")):
            out[self.mask(name)] = code
        return out

    def _table(self):
        import pandas as pd
        from skimage.measure import regionprops

        px = self.pixel_size
        (y, x) = self.axes
        interface = self.mask("interface")
        h, w = self.labels.shape
        rows = []
        for r in regionprops(self.labels):
            sl = r.slice
            own = self.labels[sl] == r.label
            n_if = int(np.count_nonzero(interface[sl] & own))
            y0, x0, y1, x1 = r.bbox
            rows.append(
                {
                    "label": r.label,
                    "area": r.area * px * px,
                    "equivalent_diameter": r.equivalent_diameter_area * px,
                    "centroid_y": y["offset"] + r.centroid[0] * y["scale"],
                    "centroid_x": x["offset"] + r.centroid[1] * x["scale"],
                    "pixels": int(r.area),
                    "core_pixels": int(r.area) - n_if,
                    "interface_pixels": n_if,
                    "touches_border": bool(y0 == 0 or x0 == 0 or y1 == h or x1 == w),
                }
            )
        cols = [
            "label",
            "area",
            "equivalent_diameter",
            "centroid_y",
            "centroid_x",
            "pixels",
            "core_pixels",
            "interface_pixels",
            "touches_border",
        ]
        return pd.DataFrame(rows, columns=cols).set_index("label")

    def __repr__(self):
        return (
            f"<Segmentation, {self.n} particles in {self.shape[0]}x{self.shape[1]} pixels, "
            f"interface {self.interface_width:g} {self.units}, shell {self.shell_width:g} "
            f"{self.units}>"
        )


def _image_and_axes(image, pixel_size):
    """The image as a float array, its two axis dicts (y, x), the pixel size and its units."""
    if hasattr(image, "axes_manager") and hasattr(image, "data"):
        am = image.axes_manager
        if am.signal_dimension != 2 or am.navigation_dimension != 0:
            raise ValueError(
                f"image must be a single 2D image (Signal2D without navigation axes), got {image}"
            )
        axes = [
            {"scale": a.scale, "offset": a.offset, "units": a.units, "name": a.name}
            for a in reversed(am.signal_axes)
        ]
        data = np.asarray(image.data, dtype=np.float64)
        u = axes[1]["units"]
        units = u if isinstance(u, str) and u not in ("", "<undefined>") else ""
        sy, sx = axes[0]["scale"], axes[1]["scale"]
        if pixel_size is None:
            if not np.isclose(sy, sx, rtol=1e-3):
                raise ValueError(
                    f"image pixels must be square, got scales {sy:g} (y) and {sx:g} (x); "
                    "pass pixel_size= to override"
                )
            pixel_size = float(sx)
            units = units or ("px" if sx == 1 else "")
    else:
        try:
            data = np.asarray(image, dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(
                f"image must be a HyperSpy Signal2D or a 2D array, got {type(image).__name__}"
            ) from None
        axes = [{"scale": 1.0, "offset": 0.0, "units": "", "name": n} for n in ("y", "x")]
        units = "px" if pixel_size is None else ""
        pixel_size = 1.0 if pixel_size is None else pixel_size
    if data.ndim != 2:
        raise ValueError(f"image must be 2D (rows, columns), got shape {data.shape}")
    if min(data.shape) < 3:
        raise ValueError(f"image must be at least 3x3 pixels, got shape {data.shape}")
    if (
        isinstance(pixel_size, bool)
        or not isinstance(pixel_size, numbers.Real)
        or not pixel_size > 0
        or not np.isfinite(pixel_size)
    ):
        raise ValueError(f"pixel_size must be a positive number, got {pixel_size!r}")
    pixel_size = float(pixel_size)
    for a in axes:
        a["scale"], a["units"] = pixel_size, units
    return data, axes, pixel_size, units


def _width(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value):
        raise TypeError(f"{name} must be a number >= 0 in the image's units, got {value!r}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0 (calibrated units), got {value!r}")
    return float(value)


def _threshold(smooth, method):
    from skimage import filters

    if isinstance(method, numbers.Real) and not isinstance(method, bool):
        return float(method)
    choice("method", method, _METHODS)
    return float(getattr(filters, f"threshold_{method}")(smooth))


def _split(binary, min_depth):
    """Watershed on the distance transform; one marker per maximum deeper than ``min_depth``."""
    from scipy import ndimage as ndi
    from skimage.morphology import reconstruction
    from skimage.segmentation import watershed

    dist = ndi.distance_transform_edt(binary)
    # h-maxima by reconstruction: the tops of the domes at least min_depth high
    dome = dist - reconstruction(np.maximum(dist - min_depth, 0.0), dist, method="dilation")
    # a marker is a whole dome (equal or nearby summits join) that rises min_depth high
    domes = ndi.label(binary & (dome > 1e-6), structure=np.ones((3, 3)))[0]
    high = ndi.maximum(dome, domes, index=np.arange(1, domes.max() + 1)) >= min_depth - 1e-6
    keep = np.concatenate([[False], np.atleast_1d(high)])
    markers = ndi.label(keep[domes], structure=np.ones((3, 3)))[0]
    return watershed(-dist, markers, mask=binary).astype(np.int32)


def _depths(labels):
    """Per-pixel distance (pixels) to the nearest pixel outside its own particle, and outside.

    The image border is not a particle edge: a particle cut by the border of the scan has no
    interface along it.
    """
    from scipy import ndimage as ndi

    depth = np.zeros(labels.shape)
    h, w = labels.shape
    for k, sl in enumerate(ndi.find_objects(labels), start=1):
        if sl is None:
            continue
        grown = (
            slice(max(sl[0].start - 1, 0), min(sl[0].stop + 1, h)),
            slice(max(sl[1].start - 1, 0), min(sl[1].stop + 1, w)),
        )
        own = labels[grown] == k
        d = ndi.distance_transform_edt(own) if not own.all() else np.full(own.shape, np.inf)
        depth[grown][own] = d[own]
    inside = labels > 0
    if inside.any():
        outside = ndi.distance_transform_edt(~inside)
    else:
        outside = np.full(labels.shape, np.inf)
    return depth, outside


def segment(
    image,
    *,
    pixel_size=None,
    interface_width,
    shell_width=0.0,
    method="otsu",
    min_area=None,
    split_touching=True,
    split_depth=1.0,
    smooth=0.7,
    local_edges=True,
    min_contrast=2.0,
    units=None,
):
    """Find the particles of an image and define core, interface, shell and matrix regions.

    Parameters
    ----------
    image : hyperspy Signal2D or array_like
        A HAADF image (particles bright) or a fitted intensity map (``res["intensity"]``).
        A signal brings its pixel size and units; non-finite pixels count as background.
    pixel_size : float, optional
        Size of a pixel in calibrated units; overrides the signal's. Default: the signal's
        scale, or 1 (units "px") for an array.
    units : str, optional
        Units of ``pixel_size`` for an array image (default ``"px"`` without a pixel size).
    interface_width : float
        Thickness of the interface (rim) inside each particle, calibrated units.
    shell_width : float
        Thickness of the shell of matrix around the particles, calibrated units; 0 for none.
    method : {"otsu", "li", "yen", "triangle", "mean"} or float
        Threshold method of scikit-image, or the threshold itself (in image values, applied
        after smoothing).
    min_area : float, optional
        Particles smaller than this (calibrated units squared) are dropped. Default: the area
        of 25 pixels. Holes inside particles are always filled.
    split_touching : bool
        Split touching particles by a watershed on the distance transform.
    split_depth : float
        Two maxima of the distance transform (distance to the nearest matrix pixel) seed two
        particles when the neck between them is at least this much lower, in pixels. Lower
        splits more readily (small touching particles), higher splits less (irregular ones).
    smooth : float
        Sigma of the Gaussian smoothing before the threshold, in pixels; 0 for none.
    local_edges : bool
        Place each particle's edge at half the local step between the particle and the matrix
        around it (a per-particle threshold, within 2 pixels of the global edge), so that
        particles brighter or dimmer than the average keep their true size.
    min_contrast : float
        A particle is kept only when the median of its pixels exceeds the median of the
        matrix around it (3 to 6 pixels beyond its edge) by at least this many times the
        larger of the pixel noise and the robust standard deviation of that matrix or of the
        particle, and half of that step or more is taken across its edge (2 pixels either
        side): bumps of noise, or the bright end of a slope, on an image without particles
        are not particles. 0 keeps every candidate.

    Returns
    -------
    Segmentation
        ``labels``, ``mask(name)``, ``particles`` (a DataFrame), ``n``, ...

    Examples
    --------
    >>> import numpy as np
    >>> yy, xx = np.mgrid[0:40, 0:60]
    >>> img = 10.0 * (np.hypot(yy - 20, xx - 15) < 8) + 10.0 * (np.hypot(yy - 20, xx - 43) < 10)
    >>> seg = segment(img, pixel_size=2.0, interface_width=4.0)
    >>> seg.n, seg.pixel_size
    (2, 2.0)
    >>> seg.particles["equivalent_diameter"].round(0).tolist()
    [31.0, 39.0]
    >>> bool((seg.mask("core") | seg.mask("interface") | seg.mask("matrix")).all())
    True
    """
    from scipy import ndimage as ndi

    data, axes, px, found_units = _image_and_axes(image, pixel_size)
    units = found_units if units is None else str(units)
    for a in axes:
        a["units"] = units
    interface_width = _width("interface_width", interface_width)
    shell_width = _width("shell_width", shell_width)
    if isinstance(smooth, bool) or not isinstance(smooth, numbers.Real) or not smooth >= 0:
        raise ValueError(f"smooth must be a Gaussian sigma >= 0 in pixels, got {smooth!r}")
    if (
        isinstance(split_depth, bool)
        or not isinstance(split_depth, numbers.Real)
        or not split_depth > 0
    ):
        raise ValueError(f"split_depth must be a positive number of pixels, got {split_depth!r}")
    if (
        isinstance(min_contrast, bool)
        or not isinstance(min_contrast, numbers.Real)
        or not min_contrast >= 0
    ):
        raise ValueError(
            f"min_contrast must be a number >= 0 (times the noise), got {min_contrast!r}"
        )
    if min_area is None:
        min_px = 25
    elif isinstance(min_area, bool) or not isinstance(min_area, numbers.Real) or not min_area >= 0:
        raise ValueError(f"min_area must be an area >= 0 in calibrated units, got {min_area!r}")
    else:
        min_px = int(np.ceil(min_area / (px * px)))

    finite = np.isfinite(data)
    if not finite.any():
        raise ValueError("image has no finite pixel")
    img = np.where(finite, data, np.min(data[finite]))
    smoothed = ndi.gaussian_filter(img, float(smooth)) if smooth > 0 else img
    thr = _threshold(smoothed, method)
    binary = ndi.binary_fill_holes(smoothed > thr)
    binary = _drop_small(ndi.label(binary)[0], min_px) > 0
    if split_touching and binary.any():
        labels = _split(binary, min_depth=split_depth)
    else:
        labels = ndi.label(binary)[0]
    labels = _drop_small(labels, min_px)
    if local_edges:
        labels = _drop_small(_local_edges(labels, smoothed), min_px)
    noise = _noise(data)
    before = int(labels.max(initial=0))
    if min_contrast > 0 and before:
        labels = _drop_faint(labels, img, min_contrast, noise)
    depth, outside = _depths(labels)
    return Segmentation(
        labels,
        (depth - 0.5) * px,
        (outside - 0.5) * px,
        px,
        units,
        interface_width,
        shell_width,
        thr,
        axes,
        noise=noise,
        faint=before - int(labels.max(initial=0)),
    )


def _noise(data):
    """Robust pixel noise: MAD of horizontal and vertical neighbour differences / sqrt(2)."""
    d = np.concatenate([np.diff(data, axis=0).ravel(), np.diff(data, axis=1).ravel()])
    d = d[np.isfinite(d)]
    if d.size == 0:
        return 0.0
    return float(1.4826 * np.median(np.abs(d - np.median(d))) / np.sqrt(2))


def _mad(v):
    """Robust standard deviation (scaled median absolute deviation)."""
    return 1.4826 * float(np.median(np.abs(v - np.median(v))))


def _drop_faint(labels, img, min_contrast, noise):
    """Labels without the particles whose median exceeds the median of the matrix around them
    by less than ``min_contrast`` times the larger of ``noise`` and that matrix's scatter."""
    from scipy import ndimage as ndi

    inside = labels > 0
    keep = np.zeros(labels.max() + 1, dtype=bool)
    h, w = labels.shape
    for k, sl in enumerate(ndi.find_objects(labels), start=1):
        if sl is None:
            continue
        ys = slice(max(sl[0].start - 6, 0), min(sl[0].stop + 6, h))
        xs = slice(max(sl[1].start - 6, 0), min(sl[1].stop + 6, w))
        own = labels[ys, xs] == k
        away = ndi.distance_transform_edt(~own)
        ring = (away > 2) & (away <= 6) & ~inside[ys, xs]
        if not ring.any():
            keep[k] = True
            continue
        around, inner = img[ys, xs][ring], img[ys, xs][own]
        spread = max(_mad(around), _mad(inner))
        step = np.median(inner) - np.median(around)
        depth = ndi.distance_transform_edt(own)
        edge_in = img[ys, xs][own & (depth <= 2)]
        edge_out = img[ys, xs][(away > 0) & (away <= 2) & ~inside[ys, xs]]
        jump = np.median(edge_in) - np.median(edge_out) if edge_out.size else step
        # a particle: a step well above the scatter, most of it taken at its edge (a slope
        # crossing the threshold rises as much inside as across the edge)
        keep[k] = step >= min_contrast * max(noise, spread) and jump >= 0.5 * step
    return _drop_small(np.where(keep[labels], labels, 0), 1)


def _local_edges(labels, smoothed, reach=2):
    """Move each particle's edge to the half-height between its plateau and the matrix nearby."""
    from scipy import ndimage as ndi

    out = labels.copy()
    inside = labels > 0
    h, w = labels.shape
    pad = reach + 4
    for k, sl in enumerate(ndi.find_objects(labels), start=1):
        if sl is None:
            continue
        ys = slice(max(sl[0].start - pad, 0), min(sl[0].stop + pad, h))
        xs = slice(max(sl[1].start - pad, 0), min(sl[1].stop + pad, w))
        own = labels[ys, xs] == k
        img = smoothed[ys, xs]
        depth = ndi.distance_transform_edt(own)
        away = ndi.distance_transform_edt(~own)
        plateau = img[depth >= 3] if np.count_nonzero(depth >= 3) >= 5 else img[own]
        ring = (away > 3) & (away <= 6) & ~inside[ys, xs]
        if np.count_nonzero(ring) < 5:
            continue
        thr = 0.5 * (np.median(plateau) + np.median(ring_values := img[ring]))
        if not np.median(plateau) > np.median(ring_values):
            continue
        near = (away <= reach) & ((labels[ys, xs] == 0) | own)
        sub = out[ys, xs]
        sub[near & own & (img <= thr) & (depth <= reach)] = 0
        sub[near & ~own & (img > thr)] = k
    return out


def _drop_small(labels, min_px):
    """Labels without the objects under ``min_px`` pixels, renumbered 1..n in scan order."""
    sizes = np.bincount(labels.ravel())
    keep = sizes >= min_px
    keep[0] = False
    lut = np.zeros(sizes.size, dtype=np.int32)
    lut[keep] = np.arange(1, np.count_nonzero(keep) + 1, dtype=np.int32)
    return lut[labels]
