"""One definition of the fit options: hl.fit, plan and ``hyperlum fit`` take their defaults and
choices from :mod:`hyperlum.fitting.options`."""

import inspect
import re

import numpy as np
import pytest

import hyperlum as hl
from hyperlum.cli import build_parser
from hyperlum.fitting import engine
from hyperlum.fitting.fit import plan
from hyperlum.fitting.options import CHOICES, DEFAULTS, LIMITS
from hyperlum.io.cube import as_cube

SHARED = ("peaks", "shape", "background", "estimator", "device", "max_iterations", "tolerance")
SHARED += ("max_peaks", "despike", "counts", "false_alarm")


@pytest.mark.parametrize("func", [hl.fit, plan], ids=["fit", "plan"])
def test_signature_defaults_are_the_one_definition(func):
    params = inspect.signature(func).parameters
    got = {name: params[name].default for name in SHARED}
    assert got == {name: getattr(DEFAULTS, name) for name in SHARED}


def test_command_line_defaults_and_choices_are_the_one_definition(capsys):
    args = build_parser().parse_args(["fit", "in.hspy", "-o", "maps.zspy"])
    for name in (
        "peaks",
        "max_peaks",
        "despike",
        "counts",
        "max_iterations",
        "tolerance",
        *CHOICES,
    ):
        assert getattr(args, name) == getattr(DEFAULTS, name), name
    with pytest.raises(SystemExit):
        build_parser().parse_args(["fit", "--help"])
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps the help text
    for name, options in CHOICES.items():
        assert f"--{name} {{{','.join(options)}}}" in text, name
        if getattr(DEFAULTS, name) is not None:  # None: the help says what it means
            assert f"({getattr(DEFAULTS, name)})" in text, name
    assert f"per pixel ({DEFAULTS.max_iterations})" in text
    assert f"({DEFAULTS.chunk_bytes / 2**20:g} on the CPU" in text


def test_fit_docstring_lists_the_choices():
    doc = hl.fit.__doc__
    for name, options in CHOICES.items():
        listed = re.search(rf"^ *{name} : \{{(.*)\}}$", doc, re.M).group(1)
        expected = [*options, *(["None"] if getattr(DEFAULTS, name) is None else [])]
        assert sorted(v.strip().strip('"') for v in listed.split(",")) == sorted(expected), name


def test_plan_applies_defaults_and_bounds():
    cube = as_cube(np.zeros((2, 60)))
    spec, options = plan(cube, device="cpu")
    assert (spec.peaks, spec.max_iterations, spec.tolerance) == (
        DEFAULTS.peaks,
        DEFAULTS.max_iterations,
        DEFAULTS.tolerance,
    )
    assert options["shape"] == DEFAULTS.shape and options["estimator"] == DEFAULTS.estimator
    lo, hi = LIMITS["peaks"]
    with pytest.raises(ValueError, match=rf"^peaks={hi + 1} is outside the allowed range {lo} to"):
        plan(cube, peaks=hi + 1, device="cpu")
    with pytest.raises(ValueError, match=r"^--shape='sinc' is not one of 'gaussian', "):
        plan(cube, shape="sinc", device="cpu", label=lambda n: "--" + n)
    assert engine.default_chunk_bytes("cpu") == DEFAULTS.chunk_bytes
    assert engine.default_chunk_bytes("cuda") == DEFAULTS.gpu_chunk_bytes


@pytest.mark.parametrize(
    ("flag", "value"), [([], None), (["--counts"], True), (["--no-counts"], False)]
)
def test_command_line_counts_reaches_the_plan(flag, value):
    from hyperlum.cli.fit import _plan

    args = build_parser().parse_args(["fit", "in.hspy", "-o", "maps.zspy", *flag])
    spec, options = _plan(args, as_cube(np.zeros((2, 60))))
    assert spec.counts is value and options["counts"] is value
