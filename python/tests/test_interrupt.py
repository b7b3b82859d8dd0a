"""Ctrl-C interrupts a long fit between iterations (KeyboardInterrupt), and the GIL is
released while training."""

import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

import strata

CHILD = textwrap.dedent(
    """
    import os, signal, sys, threading, time
    import numpy as np
    import strata

    X = np.random.RandomState(0).rand(400, 64) + 0.1
    y = (np.random.RandomState(1).rand(400) * 10).astype(int)
    fits = {
        "nmf": lambda: strata.NMF(8, solver="mm", max_iter=10**9, tol=0, random_state=0).fit(X),
        "mlp": lambda: strata.MLPClassifier((64,), solver=sys.argv[1] if len(sys.argv) > 1 else "adam",
                                            max_iter=10**9, random_state=0).fit(X, y),
    }
    fit = fits[os.environ["STRATA_WHICH"]]
    # Python keeps SIGINT ignored when it starts with SIGINT ignored (a job started with
    # `&` by a non-interactive shell, nohup-style launchers): then Ctrl-C never reaches
    # any Python code. Install Python's own handler, as an interactive start has it, so
    # the test checks strata's handling and not how the test runner was launched.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    # A real SIGINT (what Ctrl-C sends) to this process, 0.5 s into the fit.
    threading.Timer(0.5, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
    t = time.perf_counter()
    try:
        fit()
        print("FINISHED")
    except KeyboardInterrupt:
        print("INTERRUPTED %.3f" % (time.perf_counter() - t))
    """
)


@pytest.mark.parametrize("which, solver", [("nmf", ""), ("mlp", "adam"), ("mlp", "admm-taylor")])
def test_sigint_raises_keyboard_interrupt_during_fit(which, solver):
    env = dict(__import__("os").environ, STRATA_WHICH=which)
    out = subprocess.run(
        [sys.executable, "-c", CHILD] + ([solver] if solver else []),
        capture_output=True, text=True, timeout=120, env=env,
    )
    assert out.returncode == 0, out.stderr
    words = out.stdout.split()
    assert words[0] == "INTERRUPTED", out.stdout + out.stderr
    elapsed = float(words[1])
    # Interrupted during training (the signal fires at 0.5 s), within a few iterations.
    assert 0.45 <= elapsed < 10.0, elapsed


def test_gil_is_released_while_training():
    X = np.random.RandomState(0).rand(300, 200) + 0.1
    ticks = []
    done = threading.Event()

    def count():
        while not done.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0.001)

    t = threading.Thread(target=count)
    t.start()
    try:
        time.sleep(0.02)
        n0 = len(ticks)
        start = time.perf_counter()
        strata.NMF(10, solver="mm", max_iter=300, tol=0, random_state=0).fit(X)
        elapsed = time.perf_counter() - start
    finally:
        done.set()
        t.join()
    during = [x for x in ticks[n0:] if start <= x <= start + elapsed]
    assert elapsed > 0.05, "fit too short to observe"
    # The other thread kept running during the fit (not blocked on the GIL).
    assert len(during) >= 0.25 * elapsed / 0.002, (len(during), elapsed)
