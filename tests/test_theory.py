"""Results 1 and 2 (pckernels.theory, ``pck theory``): the energy gradients are right, and
the measurements show what the paper claims."""
import json

import numpy as np
import pytest
from click.testing import CliRunner

import pckernels as pk
from pckernels import theory as TH


def _problem(L=2, width=5, batch=7, seed=0, loss="nll"):
    net = pk.MLP([6] + [width] * L + [3], dtype="float64", loss=loss, seed=seed)
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((batch, 6))
    y = rng.integers(0, 3, batch) if loss == "nll" else rng.standard_normal((batch, 3))
    states = [rng.standard_normal((batch, width)) for _ in range(L)]
    return net, X, y, states


@pytest.mark.parametrize("loss", ["nll", "mse"])
def test_energy_gradients_match_finite_differences(loss):
    net, X, y, states = _problem(loss=loss)
    F, dx, dtheta = TH.energy_gradients(net, X, y, states)
    eps = 1e-6
    for l, x in enumerate(states):
        for idx in [(0, 0), (3, 2), (6, 4)]:
            up = [s.copy() for s in states]
            dn = [s.copy() for s in states]
            up[l][idx] += eps
            dn[l][idx] -= eps
            num = (TH.energy_gradients(net, X, y, up)[0]
                   - TH.energy_gradients(net, X, y, dn)[0]) / (2 * eps)
            assert dx[l][idx] == pytest.approx(num, rel=1e-6, abs=1e-8)
    B = X.shape[0]
    for i in [0, 5, 17, net.n_params - 1]:
        p0 = net.params[i]
        net.params[i] = p0 + eps
        f_up = TH.energy_gradients(net, X, y, states)[0]
        net.params[i] = p0 - eps
        f_dn = TH.energy_gradients(net, X, y, states)[0]
        net.params[i] = p0
        assert dtheta[i] == pytest.approx((f_up - f_dn) / (2 * eps) / B, rel=1e-6, abs=1e-9)


def test_energy_matches_the_kernels_trace():
    net, X, y, _ = _problem()
    r = pk.pc_infer(net, X, y, "vpc", 5, 0.2, trace=True)
    assert TH.energy_gradients(net, X, y, r.states)[0] == pytest.approx(
        r.trace.energy[-1], rel=1e-10)


def test_result1_latents_stay_at_feedforward_values_as_k_grows():
    net, X, y, _ = _problem(L=3, width=8, batch=16)
    rows = TH.result1(net, X, y, ks=(10.0, 100.0, 1000.0), steps=1500)
    shifts = [r["max_abs_shift"] for r in rows]
    for a, b in zip(shifts, shifts[1:]):
        assert 5 < a / b < 20, shifts  # like 1/k
    cos = [r["cosine_bp"] for r in rows]
    assert cos == sorted(cos) and cos[-1] > 0.9999, cos
    assert all(r["last_step_change"] < 1e-3 * r["max_abs_shift"] for r in rows)


def test_result2_fpa_and_zil_do_not_follow_the_energy_gradient():
    net, X, y, _ = _problem(L=3, width=8, batch=16)
    rows = {(r["variant"], r["step_size"]): r for r in TH.result2(net, X, y)}
    vpc = rows[("vpc", 0.1)]
    assert vpc["inference_cosine"] == pytest.approx(1.0, abs=1e-9)
    assert vpc["update_cosine"] == pytest.approx(1.0, abs=1e-9)
    for key in (("fpa", 1.0), ("zil", 1.0)):
        assert rows[key]["cosine_bp"] == pytest.approx(1.0, abs=1e-9)
        assert rows[key]["update_cosine"] < 0.99, rows[key]
    assert rows[("fpa", 1.0)]["inference_cosine"] < 0.99


def test_pck_theory_command(tmp_path):
    from pckernels_cli.main import cli
    out = tmp_path / "theory.json"
    result = CliRunner().invoke(cli, ["theory", "--hidden", "8x2", "--train-epochs", "0",
                                      "--batch-size", "16", "--precision-ratio", "1,100",
                                      "--steps", "300", "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "Result 1" in result.output and "Result 2" in result.output
    data = json.loads(out.read_text())
    assert [r["k"] for r in data["result1"]] == [1.0, 100.0]
    assert {r["variant"] for r in data["result2"]} == {"vpc", "fpa", "zil"}
    bad = CliRunner().invoke(cli, ["theory", "--precision-ratio", "0,-1"])
    assert bad.exit_code == 2 and "numbers > 0" in bad.output
