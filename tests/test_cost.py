"""The cost model's closed forms on hand-checked architectures, and its counts against pc_infer."""
import numpy as np
import pytest

from pckernels import MLP, pc_infer
from pckernels import cost


def test_layer_flops_hand_checked():
    # 3-4-2, batch 5: layer 0 = 2*5*3*4 + 5*4 (bias) + 5*4 (tanh) = 160;
    # layer 1 = 2*5*4*2 + 5*2 (bias), identity output = 90
    assert cost.layer_flops([3, 4, 2], 5).tolist() == [160, 90]
    assert cost.layer_flops([3, 4, 2], 5, activation="identity").tolist() == [140, 90]


def test_analytic_closed_forms():
    m = cost.analytic([3, 4, 2], 5, steps=None)
    C_sum, C_max = 250.0, 160.0
    assert m["C_sum"] == C_sum and m["C_max"] == C_max and m["L"] == 1
    assert m["bp"]["work_flops"] == m["bp"]["time_flops"] == 3 * C_sum     # eq. 2.6
    assert m["bp"]["time_fwd"] == 3.0
    # fpa, T = L = 1: TIME = sum C + 1 * 2 C_max, WORK = sum C + 1 * 2 sum C
    assert m["fpa"]["steps"] == 1
    assert m["fpa"]["time_flops"] == C_sum + 2 * C_max
    assert m["fpa"]["work_flops"] == 3 * C_sum
    assert m["fpa"]["time_ratio_bp"] == pytest.approx((C_sum + 2 * C_max) / (3 * C_sum))
    # zil, T = L = 1 state update (states at t = 0, 1): the critical path of fpa, and the
    # work adds one prediction pass per update (vpc dynamics)
    assert m["zil"]["steps"] == 1
    assert m["zil"]["time_flops"] == C_sum + 2 * C_max == m["fpa"]["time_flops"]
    assert m["zil"]["work_flops"] == C_sum + 2 * C_sum + C_sum
    assert m["zil"]["work_fwd"] == 4.0
    m = cost.analytic([3, 4, 2], 5, steps=3)
    assert m["zil"]["steps"] == m["fpa"]["steps"] == 3
    assert m["zil"]["work_flops"] == C_sum + 3 * 2 * C_sum + 3 * C_sum


def test_equal_layers_ratio_reaches_one_at_T_equal_layers():
    # N equal layers: TIME{fpa}/TIME{bp} = (N C + 2 T C) / (3 N C) = 1 exactly at T = N
    sizes = [16] * 5          # N = 4 weight layers, L = 3
    m = cost.analytic(sizes, 8, steps=4)
    C = cost.layer_flops(sizes, 8)
    assert m["fpa"]["time_ratio_bp"] == pytest.approx(
        (C.sum() + 2 * 4 * C.max()) / (3 * C.sum()))
    m = cost.analytic([16] * 5, 8, steps=10)
    assert m["fpa"]["time_ratio_bp"] > 1


def test_analytic_rejects_bad_input():
    with pytest.raises(ValueError):
        cost.analytic([3], 5)
    with pytest.raises(ValueError):
        cost.analytic([3, 2], 0)
    with pytest.raises(ValueError):
        cost.analytic([3, 2], 4, algos=("vpc",))


def test_kernel_flops_consistent():
    k = cost.kernel_flops([3, 4, 2], 5, steps=2)
    assert k["forward"] == 250
    assert k["input_vjps"] == 2 * 5 * 4 * 2          # only layer 1 has an input-side VJP
    assert k["fpa"] > k["forward"] and k["backprop"] > k["forward"]


def test_first_nonzero_theory():
    assert cost.first_nonzero_steps(4).tolist() == [4, 3, 2, 1]


@pytest.fixture(scope="module")
def small():
    net = MLP([12, 7, 7, 7, 7, 4], dtype="float64", seed=3)
    rng = np.random.default_rng(1)
    return net, rng.standard_normal((6, 12)), rng.integers(0, 4, 6)


@pytest.mark.parametrize("steps,step_size", [(4, 1.0), (9, 1.0), (2, 1.0), (25, 0.5),
                                             (3, 0.8)])
def test_simulation_agrees_with_pc_infer(small, steps, step_size):
    net, X, y = small
    r = pc_infer(net, X, y, "fpa", steps, step_size, schedule="serial", skip=True)
    s = cost.simulate_fpa(net, X, y, steps, step_size)
    assert s["first_nonzero"].tolist() == r.first_nonzero.tolist()
    assert s["converged_at"].tolist() == r.converged_at.tolist()
    theory = [t if t <= steps else -1 for t in cost.first_nonzero_steps(4)]
    assert r.first_nonzero.tolist() == theory
    if step_size == 1.0 and steps > 4:
        assert r.converged_at.tolist() == cost.first_nonzero_steps(4).tolist()
    if step_size < 1.0 and steps > 4:      # Corollary 1: never before the front, later here
        conv = np.where(r.converged_at < 0, steps + 1, r.converged_at)
        assert np.all(conv > cost.first_nonzero_steps(4))
    # wasted work: analytic == skip counters == simulation
    a = cost.wasted_vjps("fpa", 4, steps, step_size)
    m = cost.measured_wasted(r.work, "fpa", 4, steps, step_size)
    assert m["total"] == a["total"] == steps * 4
    assert m["wasted"] == a["wasted"]
    assert s["vjp_needed"].sum() == a["useful"]


def test_wasted_fpa_step_one_closed_form():
    w = cost.wasted_vjps("fpa", 5, 5)
    assert w["useful"] == 5 and w["wasted_fraction"] == pytest.approx(1 - 1 / 5)
    assert w["ahead_of_front"] == 4 + 3 + 2 + 1


@pytest.mark.parametrize("steps,useful", [(0, 0), (2, 2), (4, 4), (7, 4)])
def test_wasted_zil_counts_state_updates(steps, useful):
    # T state updates, as for fpa: T = L reaches every latent; T < L leaves L - T unreached
    w = cost.wasted_vjps("zil", 4, steps)
    assert w["updates"] == steps and w["total"] == 4 * steps
    assert w["useful"] == useful == cost.wasted_vjps("fpa", 4, steps)["useful"]
    assert w["ahead_of_front"] == cost.wasted_vjps("fpa", 4, steps)["ahead_of_front"]


# the zil cases need zil's new step count (T = state updates) from main's pc.py
@pytest.mark.parametrize("variant,steps,step_size", [("zil", 5, 1.0), ("zil", 4, 1.0),
                                                     ("zil", 2, 1.0), ("vpc", 7, 0.3)])
def test_wasted_other_variants_match_pc_infer(small, variant, steps, step_size):
    net, X, y = small
    r = pc_infer(net, X, y, variant, steps, step_size, schedule="serial", skip=True)
    a = cost.wasted_vjps(variant, 4, steps, step_size)
    m = cost.measured_wasted(r.work, variant, 4, steps, step_size)
    assert m["skipped"] == a["ahead_of_front"]        # what skipping can prove
    assert m["wasted"] == a["wasted"]
    assert m["total"] == a["total"] == 4 * steps      # T state updates of 4 latents
    if variant == "zil":                               # one VJP per reached latent feeds
        assert a["useful"] == min(steps, 4)            # a snapshot
