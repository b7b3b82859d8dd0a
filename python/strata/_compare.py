"""``strata.compare``: ``cargo xtask compare`` from Python."""

import json
import os

from . import _native


class CompareResults(dict):
    """The parsed ``results.json`` of a comparison (its versioned schema, see
    ``docs/RESULTS_SCHEMA.md``), with the run directory as :attr:`dir` (it also holds
    ``report.md`` and the SVG plots)."""

    dir: str


def _argv(options):
    argv = []
    for name, value in options.items():
        flag = "--" + name.replace("_", "-")
        if value is None or value is False:
            continue
        if value is True:
            argv.append(flag)
        elif isinstance(value, (list, tuple)):
            argv += [flag, ",".join(str(v) for v in value)]
        else:
            argv += [flag, str(value)]
    return argv


def compare(**options):
    """Runs solvers x problems x seeds under equal budgets, exactly as
    ``cargo xtask compare`` (the same argument parser and runner), and returns the
    parsed results.

    Every option of ``strata-compare`` is a keyword argument with ``-`` written ``_``:
    ``solvers=["adam", "bcd"]``, ``problems="digits-mlp"``, ``seeds=3`` (or ``"0,4"``,
    ``"3..6"``), ``epochs=5``, ``time_budget=0``, ``threads=1``, ``dtype="f32"``,
    ``out="results"``, ``full=True``, ``tune=True`` (``tune_points=5``),
    ``eval_every=2``, ``mnist_dir=...``, ``suite="papers"``, ``no_progress=True``. Lists are joined with commas; ``True`` gives the bare flag;
    ``False`` / ``None`` leave the option out. A bad option raises ``ValueError`` with
    the parser's message.

    A new directory ``<out>/compare-<UTC time>-<n>`` is written as usual; the GIL is
    released while the comparison runs (it cannot be interrupted before it ends).
    """
    options.setdefault("no_progress", True)
    run_dir = _native.compare_argv(_argv(options))
    with open(os.path.join(run_dir, "results.json"), encoding="utf-8") as f:
        results = CompareResults(json.load(f))
    results.dir = run_dir
    return results
