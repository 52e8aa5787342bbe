"""Run by tests/test_determinism.py in a fresh process: every PC variant x step size x
schedule on 1 and 2 threads, repeated calls, in a chosen compile order. Prints JSON.

Usage: python determinism_worker.py ORDER REPEATS, ORDER in {serial-first, parallel-first}.
The cache folder comes from the environment (PCK_CACHE_DIR), so the caller decides
whether this process compiles afresh or loads what another process compiled.
"""
import hashlib
import json
import sys

import numpy as np

import pckernels as pk
from pckernels.kernels import pc as K
from pckernels.kernels import pc_safeguard as S

#: (variant, step size); "+auto" runs the auto step rule (energy safeguard with per-sample
#: decisions), "+momentum" its heavy-ball latent optimizer.
VARIANTS = (("vpc", 1.0), ("vpc", 0.5), ("scaled", 1.0), ("scaled", 0.5), ("fpa", 1.0),
            ("fpa", 0.5), ("zil", 1.0), ("vpc+auto", 1.0), ("scaled+auto", 1.0),
            ("vpc+auto+momentum", 1.0), ("ipc+auto", 1.0))


def _options(name):
    variant, *rest = name.split("+")
    kw = {}
    if "auto" in rest:
        kw["step_rule"] = "auto"
    if "momentum" in rest:
        kw["latent_optimizer"] = "momentum"
    return variant, kw


def digest(r):
    h = hashlib.sha256(r.grad.tobytes())
    for e in r.errors:
        h.update(e.tobytes())
    h.update(np.float64(r.loss).tobytes())
    return h.hexdigest()


def main(order, repeats):
    rng = np.random.default_rng(0)
    net = pk.MLP([20, 32, 32, 32, 5], seed=1)
    X = rng.standard_normal((77, 20)).astype(np.float32)
    y = rng.integers(0, 5, 77)
    schedules = ["serial", "layers", "batch"]
    threads = [1, 2]
    if order == "parallel-first":
        schedules.reverse()
        threads.reverse()
    out = {"runs": {}, "grads": {}}
    for n in threads:
        pk.set_threads(n)
        for schedule in schedules:
            for name, gamma in VARIANTS:
                variant, kw = _options(name)
                runs = [pk.pc_infer(net, X, y, variant, 4, gamma, precision_ratio=2.0,
                                    schedule=schedule, **kw) for _ in range(repeats)]
                key = f"{name}/{gamma}/{schedule}/{n}"
                out["runs"][key] = sorted({digest(r) for r in runs})
                out["grads"][key] = runs[0].grad.astype(np.float64).tolist()
                # the traced path runs the steps one call at a time (other kernels)
                traced = pk.pc_infer(net, X, y, variant, 4, gamma, precision_ratio=2.0,
                                     schedule=schedule, trace=True, **kw)
                out["runs"][key + "/trace"] = [digest(traced)]
    stats, fusion = {}, {}
    for name in sorted(set(dir(K)) | set(dir(S))):
        d = getattr(S, name) if hasattr(S, name) else getattr(K, name)
        if not hasattr(d, "stats"):
            continue
        s = d.stats
        stats[name] = {"build": getattr(d.py_func, "_pck_build", ""),
                       "hits": sum(s.cache_hits.values()),
                       "misses": sum(s.cache_misses.values()),
                       "cache_path": s.cache_path}
        for sig, cres in d.overloads.items():
            diag = (cres.metadata or {}).get("parfor_diagnostics")
            if diag is not None:
                fusion.setdefault(name, []).append(
                    {str(k): list(v) for k, v in diag.fusion_info.items()})
    out["stats"], out["fusion"] = stats, fusion
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
