"""Results never depend on the thread count, the compile order or the kernel cache.

Each check runs tests/determinism_worker.py in fresh processes: two with empty cache
folders, compiling in opposite orders (serial builds first / parallel builds first), and
one that loads everything the first compiled, in the other order. Every PC variant x step
size {1, 0.5} x schedule runs 20 times on 1 and on 2 threads.

- serial and layer-parallel: bit-identical to the serial one-thread result;
- batch-parallel: bit-identical across calls and thread counts; equal to serial to
  rounding only, since its gradient is a sum over row chunks in another order;
- in a fresh folder nothing is a cache hit (a hit there means two builds share an entry),
  in the reused one nothing is compiled; no parallel kernel had loops fused by Numba.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

WORKER = os.path.join(os.path.dirname(__file__), "determinism_worker.py")
REPEATS = 20


def _start(order, cache_dir):
    env = dict(os.environ, PCK_CACHE_DIR=str(cache_dir), NUMBA_NUM_THREADS="2")
    return subprocess.Popen([sys.executable, WORKER, order, str(REPEATS)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(proc):
    out, err = proc.communicate(timeout=900)
    assert proc.returncode == 0, err[-3000:]
    return json.loads(out)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    d1 = tmp_path_factory.mktemp("cache-serial-first")
    d2 = tmp_path_factory.mktemp("cache-parallel-first")
    # the two fresh compiles run side by side (compilation is single-threaded)
    p1, p2 = _start("serial-first", d1), _start("parallel-first", d2)
    fresh1, fresh2 = _finish(p1), _finish(p2)
    cached = _finish(_start("parallel-first", d1))
    return {"fresh-serial-first": (fresh1, d1), "fresh-parallel-first": (fresh2, d2),
            "cached": (cached, d1)}


def test_repeated_calls_are_bit_identical(runs):
    for name, (out, _) in runs.items():
        repeated = {k: len(v) for k, v in out["runs"].items() if len(v) != 1}
        assert not repeated, f"{name}: distinct results in repeated calls: {repeated}"


def test_thread_count_and_schedule_do_not_change_results(runs):
    out, _ = runs["fresh-parallel-first"]
    for key, digests in out["runs"].items():
        variant, gamma, schedule, threads = key.split("/")[:4]
        tail = "/trace" if key.endswith("/trace") else ""
        if schedule in ("serial", "layers"):
            assert digests == out["runs"][f"{variant}/{gamma}/serial/1{tail}"], key
        else:
            other = "2" if threads == "1" else "1"
            assert digests == out["runs"][f"{variant}/{gamma}/batch/{other}{tail}"], key
            if not tail:
                got = np.array(out["grads"][key])
                want = np.array(out["grads"][f"{variant}/{gamma}/serial/1"])
                assert np.linalg.norm(got - want) <= 1e-5 * np.linalg.norm(want), key


def test_compile_order_and_cache_do_not_change_results(runs):
    ref = runs["fresh-serial-first"][0]["runs"]
    for name in ("fresh-parallel-first", "cached"):
        assert runs[name][0]["runs"] == ref, name


def test_each_build_has_its_own_cache_entry(runs):
    for name in ("fresh-serial-first", "fresh-parallel-first"):
        out, folder = runs[name]
        hits = {k: s for k, s in out["stats"].items() if s["hits"]}
        assert not hits, f"{name}: cache hits in an empty cache folder: {hits}"
        compiled = [k for k, s in out["stats"].items() if s["misses"]]
        assert "_steps_layer_parallel" in compiled and "_steps_serial" in compiled
        for s in out["stats"].values():
            if s["misses"]:
                assert s["cache_path"].startswith(str(folder)), s
    out, _ = runs["cached"]
    compiled = {k: s for k, s in out["stats"].items() if s["misses"]}
    assert not compiled, f"the reused cache compiled again: {compiled}"
    assert out["stats"]["_steps_layer_parallel"]["hits"] >= 1


def test_numba_fused_no_parallel_loops(runs):
    for name in ("fresh-serial-first", "fresh-parallel-first"):
        fusion = runs[name][0]["fusion"]
        assert "_steps_layer_parallel" in fusion
        fused = {k: v for k, v in fusion.items() if any(v)}
        assert not fused, f"{name}: Numba fused prange loops: {fused}"
