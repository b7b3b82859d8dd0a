"""strata.compare: the runner from Python, results parsed and written as usual."""

import os

import strata


def test_compare_runs_and_returns_parsed_results(tmp_path):
    res = strata.compare(solvers=["adam", "lbfgs"], problems="blobs", seeds=1, epochs=3,
                         time_budget=0, out=str(tmp_path))
    assert os.path.isdir(res.dir) and os.path.dirname(res.dir) == str(tmp_path)
    for name in ("results.json", "report.md"):
        assert os.path.isfile(os.path.join(res.dir, name))
    runs = res["runs"]
    assert {r["solver"] for r in runs} == {"adam", "lbfgs"}
    assert all(r["problem"] == "blobs" for r in runs)
    # A second call writes a new directory; nothing earlier is overwritten.
    again = strata.compare(solvers="adam", problems="blobs", epochs=1, time_budget=0, out=str(tmp_path))
    assert again.dir != res.dir and os.path.isdir(res.dir)
