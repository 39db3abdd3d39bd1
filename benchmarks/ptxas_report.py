"""Registers, stack and spills of every CUDA kernel, from ``ptxas -v``, without a GPU.

Compiles the fit kernels (1-4 peaks, every background and estimator, in each working
precision) and the transpose kernel to PTX for each compute capability with
:func:`hyperlum.kernels.cuda.compile_ptx`, runs the ptxas of pip's ``nvidia-cuda-nvcc`` on
each, and prints a Markdown table.

Run: ``python benchmarks/ptxas_report.py [--cc 8.0 9.0] [--dtypes float32 uint16]
[--peaks 1 2] [--backgrounds constant] [--estimators lse mle] [--shapes gaussian lorentzian]
[--precisions float32 float64] [--json out.json]``
(a few minutes: one NVVM compile per distinct kernel and capability).
"""

import argparse
import json
import re

from hyperlum.kernels import cuda as kc


def report(ccs, dtypes, **selection):
    rows = {}
    for cc in ccs:
        arch = f"sm_{cc[0]}{cc[1]}"
        for name, ptx in kc.compile_ptx(cc, dtypes=dtypes, **selection).items():
            info = kc.ptxas_info(ptx, cc)
            rows.setdefault(name, {})[arch] = {k: v for k, v in info.items() if k != "log"}
    return rows


def precision(name):
    """The working precision a kernel's name ends with (``_f32``), or "" (transpose)."""
    m = re.search(r"_f(32|64)$", name)
    return f"float{m[1]}" if m else ""


def markdown(rows, ccs):
    archs = [f"sm_{cc[0]}{cc[1]}" for cc in ccs]
    cols = " | ".join(f"{a} regs | {a} stack B | {a} spill st/ld B" for a in archs)
    head = "| kernel | precision | " + cols
    lines = [head + " |", "|---" * (2 + 3 * len(archs)) + "|"]
    for name, r in rows.items():
        cells = [precision(name)]
        for a in archs:
            i = r[a]
            cells += [str(i["registers"]), str(i["stack"])]
            cells.append(f"{i['spill_stores']}/{i['spill_loads']}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cc", nargs="+", default=["8.0", "9.0"], help="compute capabilities")
    ap.add_argument("--dtypes", nargs="+", default=["float32", "uint16"])
    ap.add_argument("--peaks", nargs="+", type=int, help="peak counts (default: 1-4)")
    ap.add_argument("--backgrounds", nargs="+", help="backgrounds (default: all)")
    ap.add_argument("--estimators", nargs="+", help="estimators (default: lse mle)")
    ap.add_argument("--shapes", nargs="+", default=["gaussian"], help="peak shapes (gaussian)")
    ap.add_argument(
        "--precisions", nargs="+", default=["float32", "float64"], help="working precisions"
    )
    ap.add_argument("--json", help="also write the figures to this JSON file")
    args = ap.parse_args(argv)
    ccs = [tuple(int(v) for v in c.split(".")) for c in args.cc]
    print(f"ptxas: {kc.find_ptxas()}")
    selection = {"peaks": args.peaks, "backgrounds": args.backgrounds, "shapes": args.shapes}
    selection["precisions"] = args.precisions
    rows = report(ccs, args.dtypes, estimators=args.estimators, **selection)
    print(markdown(rows, ccs))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=2)


if __name__ == "__main__":
    main()
