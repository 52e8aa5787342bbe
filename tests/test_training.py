"""The training loop: reproducibility, accuracy on digits, divergence handling, metrics."""
import numpy as np
import pytest

from pckernels import MLP, DivergenceError, History, train
from pckernels.training import EpochMetrics, Optimizer


def small_problem(n=60, n_in=5, n_out=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, n_in))
    y = (X[:, 0] > 0).astype(np.int64) + (X[:, 1] > 0.5)
    return X, np.minimum(y, n_out - 1)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_fixed_seed_is_reproducible(optimizer):
    X, y = small_problem()
    nets = [MLP([5, 6, 3], seed=3) for _ in range(3)]
    h1 = train(nets[0], X, y, epochs=3, batch_size=8, optimizer=optimizer, lr=0.01, seed=4)
    h2 = train(nets[1], X, y, epochs=3, batch_size=8, optimizer=optimizer, lr=0.01, seed=4)
    train(nets[2], X, y, epochs=3, batch_size=8, optimizer=optimizer, lr=0.01, seed=5)
    np.testing.assert_array_equal(nets[0].params, nets[1].params)
    assert [e.train_loss for e in h1.epochs] == [e.train_loss for e in h2.epochs]
    assert not np.array_equal(nets[0].params, nets[2].params)  # the shuffling seed matters
    assert not np.array_equal(nets[0].params, MLP([5, 6, 3], seed=3).params)  # it trained


def test_one_batch_of_sgd_is_one_optimizer_step():
    """A full batch without momentum: params_after = params - lr * backprop gradient."""
    from pckernels import backprop
    X, y = small_problem(n=10)
    net = MLP([5, 4, 3], dtype="float64", seed=1)
    expected = net.params - 0.1 * backprop(net, X, y).grad
    train(net, X, y, epochs=1, batch_size=10, lr=0.1, momentum=0.0)
    np.testing.assert_allclose(net.params, expected, rtol=1e-13, atol=1e-15)


def test_train_on_digits_with_defaults_reaches_95_percent(digits):
    net = MLP([digits.n_features, 64, 64, digits.n_classes], activation="tanh", seed=0)
    history = train(net, digits.X_train, digits.y_train, X_test=digits.X_test,
                    y_test=digits.y_test)  # lr 0.05, 10 epochs, sgd momentum 0.9, batch 64
    assert len(history.epochs) == 10
    assert history.final.test_accuracy >= 0.95
    losses = [e.train_loss for e in history.epochs]
    assert losses[-1] < 0.5 * losses[0]


def test_per_epoch_metrics(digits):
    X, y = digits.X_train[:300], digits.y_train[:300]
    seen_batches, seen_epochs = [], []
    history = History()
    out = train(MLP([64, 16, 10], seed=0), X, y, X[:50], y[:50], digits.X_test[:80],
                digits.y_test[:80], epochs=3, batch_size=64, history=history,
                on_batch=seen_batches.append, on_epoch=seen_epochs.append)
    assert out is history and len(history.epochs) == 3
    assert seen_batches == [64, 64, 64, 64, 44] * 3
    assert seen_epochs == history.epochs
    for i, m in enumerate(history.epochs, start=1):
        assert isinstance(m, EpochMetrics) and m.epoch == i
        assert np.isfinite(m.train_loss) and m.train_loss > 0
        assert 0 <= m.val_accuracy <= 1 and 0 <= m.test_accuracy <= 1
        assert m.seconds > 0 and m.samples_per_s > 0
        assert m.cosine is None and m.layer_cosine is None
    d = history.as_dicts()
    assert set(d[0]) >= {"epoch", "train_loss", "val_accuracy", "test_accuracy", "seconds",
                         "samples_per_s", "cosine", "layer_cosine"}
    assert history.final is history.epochs[-1]
    # no evaluation sets: accuracies are NaN, not errors
    h = train(MLP([64, 4, 10]), X, y, epochs=1)
    assert np.isnan(h.final.val_accuracy) and np.isnan(h.final.test_accuracy)


def test_cosine_with_backprop_is_one():
    X, y = small_problem()
    h = train(MLP([5, 4, 4, 3]), X, y, epochs=2, batch_size=16, cosine=True)
    for m in h.epochs:
        assert m.cosine == 1.0 and m.layer_cosine == [1.0, 1.0, 1.0]


@pytest.mark.parametrize("activation", ["identity", "relu"])
def test_huge_lr_raises_divergence_and_restores_params(activation, digits):
    X, y = digits.X_train[:640], digits.y_train[:640]
    net = MLP([64, 16, 16, 10], activation=activation, dtype="float32", seed=0)
    after = [net.params.copy()]  # params after each finished batch (index 0: initial)
    with pytest.raises(DivergenceError, match=r"loss became (nan|inf) at epoch 1, batch \d+"):
        train(net, X, y, epochs=2, lr=1e6, on_batch=lambda n: after.append(net.params.copy()))
    assert 1 <= len(after) - 1 < 10
    assert np.all(np.isfinite(net.params))
    np.testing.assert_array_equal(net.params, after[-1])  # as before the failing batch


def test_update_that_overflows_the_params_is_rolled_back():
    """lr near float32's max: the first update turns the params into inf; the loss of the
    next batch is NaN, and the params go back to before the update that overflowed."""
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((40, 3)), 1e3 * rng.standard_normal((40, 2))
    net = MLP([3, 4, 2], loss="mse", dtype="float32")
    after = [net.params.copy()]
    with pytest.raises(DivergenceError, match="epoch 1, batch 1 made the parameters"):
        train(net, X, Y, epochs=2, batch_size=10, lr=3e38, momentum=0.0,
              on_batch=lambda n: after.append(net.params.copy()))
    assert len(after) == 2 and not np.all(np.isfinite(after[1]))
    np.testing.assert_array_equal(net.params, after[0])


def test_overflow_in_the_last_batch_is_caught_at_the_epoch_end():
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((10, 3)), 1e3 * rng.standard_normal((10, 2))
    net = MLP([3, 4, 2], loss="mse", dtype="float32")
    before = net.params.copy()
    with pytest.raises(DivergenceError, match="the update of epoch 1, batch 1 made the parameters non-finite"):
        train(net, X, Y, epochs=1, batch_size=10, lr=3e38, momentum=0.0)
    np.testing.assert_array_equal(net.params, before)


def test_history_keeps_finished_epochs_on_divergence(digits):
    """Epoch 1 is fine, then the params turn non-finite: the caller's History keeps epoch 1
    and the params go back to the last finite values (before epoch 1's last batch)."""
    X, y = digits.X_train[:128], digits.y_train[:128]
    net = MLP([64, 8, 10], seed=0)
    history = History()
    after = [net.params.copy()]

    def poison(m):
        net.weights[0][0, 0] = np.inf

    with pytest.raises(DivergenceError, match="non-finite"):
        train(net, X, y, epochs=3, history=history, on_epoch=poison,
              on_batch=lambda n: after.append(net.params.copy()))
    assert [m.epoch for m in history.epochs] == [1]
    assert len(after) == 3  # two batches of epoch 1
    np.testing.assert_array_equal(net.params, after[1])


@pytest.mark.parametrize("kwargs,match", [
    (dict(epochs=0), "epochs"),
    (dict(epochs=1.5), "epochs"),
    (dict(batch_size=0), "batch_size"),
    (dict(lr=0.0), "lr must be > 0"),
    (dict(lr=float("inf")), "lr must be > 0"),
    (dict(momentum=1.0), "momentum"),
    (dict(weight_decay=-1.0), "weight_decay"),
    (dict(weight_decay=float("nan")), "weight_decay"),
    (dict(optimizer="rmsprop"), "unknown optimizer"),
    (dict(algo="dfa"), "unknown algorithm"),
])
def test_train_validates_arguments(kwargs, match):
    X, y = small_problem(n=8)
    net = MLP([5, 3])
    before = net.params.copy()
    with pytest.raises(ValueError, match=match):
        train(net, X, y, **kwargs)
    np.testing.assert_array_equal(net.params, before)


def test_optimizer_state_layout():
    net = MLP([3, 2])
    opt = Optimizer(net, "adam", lr=0.1)
    assert opt.state1.shape == opt.state2.shape == net.params.shape
    opt.step(np.ones_like(net.params))
    assert opt.t == 1
    np.testing.assert_allclose(opt.state1, 0.1, rtol=1e-6)  # (1 - beta1) * g


def test_shuffle_false_visits_the_samples_in_order():
    X, y = small_problem()
    kw = dict(epochs=2, batch_size=8, lr=0.01)
    nets = [MLP([5, 6, 3], seed=3) for _ in range(3)]
    train(nets[0], X, y, shuffle=False, seed=1, **kw)
    train(nets[1], X, y, shuffle=False, seed=2, **kw)
    train(nets[2], X, y, seed=1, **kw)
    np.testing.assert_array_equal(nets[0].params, nets[1].params)  # the seed is unused
    assert not np.array_equal(nets[0].params, nets[2].params)


def test_on_epoch_returning_true_stops_training():
    X, y = small_problem()
    seen = []
    h = train(MLP([5, 6, 3], seed=3), X, y, epochs=10, batch_size=8, lr=0.01,
              on_epoch=lambda m: seen.append(m.epoch) or m.epoch == 3)
    assert seen == [1, 2, 3] and len(h.epochs) == 3
