"""Peak shapes: one module per shape, one line per shape in :data:`SHAPES`.

A shape module gives plain Python kernel functions (compiled per model by
:func:`hyperlum.kernels.compile.jit_model`, listed in its ``FUNCTIONS``, callees first):

``peak_value(x, p, i)``
    the value at ``x`` of the peak whose parameters start at ``p[i]``;
``peaks_block(x, i0, nb, p, npk, D, F, R, h, C)``
    the sum of ``npk`` peaks into ``F[j]`` and their derivatives into ``D[NP k + q, j]`` for
    the channels ``i0 + j`` of a block (most shapes take
    :func:`~hyperlum.kernels.shapes.common.peaks_block` with a ``peak_point``);
``peak_start(p, i, amp, centre, fwhm, wmin)``
    starting values from the height, position and FWHM that the generic guess found;
``peak_constrain``, ``peak_step_small``
    the feasible box and the convergence scale of each parameter;
``peak_area(p, i, G)``
    the area, its gradient into ``G``;
``peak_fwhm(p, i, G)``
    the FWHM, its gradient into ``G`` (the kernels write the standard deviations of both,
    ``G^T Cov G``);

and, for numpy: ``N_PARAMS`` (3 or 4; amplitude, centre and a width first), ``PARAM_NAMES``,
``UNITS``, ``FWHM_PER_WIDTH``, ``EXPRESSION`` (a HyperSpy ``Expression``), ``evaluate``,
``fwhm`` and ``area`` (a closed form, or, where there is none, the kernel function compiled
for the CPU: the EMG's ``fwhm`` runs its ``peak_fwhm``). See ``docs/adding-a-shape.md``.
"""

from typing import NamedTuple

from hyperlum.kernels.shapes import emg, gaussian, lorentzian, pseudo_voigt

#: Shape name -> (module, compile-time constants of the module bound for this entry).
SHAPES = {
    "gaussian": (gaussian, {}),
    "lorentzian": (lorentzian, {}),
    "pseudo_voigt": (pseudo_voigt, {}),
    "emg_low": (emg, {"SIDE": -1.0}),  # tail towards lower x: low energy on an eV axis
    "emg_high": (emg, {"SIDE": 1.0}),  # tail towards higher x: low energy on a nm axis
}
#: Most parameters of one peak over all shapes.
MAX_PEAK_PARAMS = 4


class Shape(NamedTuple):
    """A registered shape: its name, module and the constants bound for it."""

    name: str
    module: object
    constants: dict

    @property
    def n_params(self):
        return self.module.N_PARAMS

    @property
    def param_names(self):
        return self.module.PARAM_NAMES

    @property
    def units(self):
        return self.module.UNITS

    def evaluate(self, x, params):
        """Peak values ``out[..., channel]`` for ``params[..., n_params]`` (numpy)."""
        return self.module.evaluate(x, params, **self._kwargs())

    def fwhm(self, params):
        """FWHM of each peak of ``params[..., n_params]``."""
        return self.module.fwhm(params)

    def area(self, params):
        """Area of each peak of ``params[..., n_params]``."""
        return self.module.area(params)

    def _kwargs(self):
        return {k.lower(): v for k, v in self.constants.items()}


def get_shape(name):
    """The registered shape ``name``.

    Examples
    --------
    >>> s = get_shape("lorentzian")
    >>> s.n_params, s.param_names
    (3, ('amplitude', 'centre', 'gamma'))
    """
    module, constants = SHAPES[name]
    return Shape(name, module, dict(constants))
