"""Training checkpoints: a saved network plus what continues its run exactly.

A checkpoint is the ``.npz`` of :meth:`MLP.save` (so :meth:`MLP.load` and ``pck eval``
read it as a network) with three more entries: ``train_state`` (JSON: the epoch, the
shuffling generator's state, the optimizer step count and the run's settings) and the
optimizer's ``optimizer_state1`` / ``optimizer_state2`` buffers; a network with feedback
matrices (``net.feedback``, :mod:`pckernels.feedback`) adds ``feedback_kind`` and
``feedback``. A checkpoint without them (older ones included) is a network without.
A run of PC inference under the ``auto`` step rule adds ``power_vecs``, its warm-started
power-iteration vectors (:meth:`pckernels.training.BatchUpdate.inference_state`).
"""
import json
import os
from dataclasses import dataclass

import numpy as np

from .model import MLP

FORMAT = "pckernels-train-1"


@dataclass
class TrainingCheckpoint:
    """What :func:`load_checkpoint` read.

    Attributes
    ----------
    net : MLP
    epoch : int
        The last finished epoch.
    rng_state : dict
        ``bit_generator.state`` of the shuffling generator after that epoch.
    optimizer_state : dict
        :meth:`pckernels.training.Optimizer.state_dict` after that epoch.
    settings : dict
        The caller's settings of the run (e.g. the command-line options).
    inference_state : dict
        :meth:`pckernels.training.BatchUpdate.inference_state` after that epoch (empty
        when the run kept none).
    """

    net: MLP
    epoch: int
    rng_state: dict
    optimizer_state: dict
    settings: dict
    inference_state: dict

    def generator(self):
        """A new generator in the saved state (continues the shuffling stream)."""
        rng = np.random.default_rng()
        rng.bit_generator.state = self.rng_state
        return rng


def save_checkpoint(path, net, epoch, rng, optimizer, settings, inference_state=None):
    """Write ``net`` with the state that resumes its training, atomically.

    Parameters
    ----------
    path : str or os.PathLike
    net : MLP
    epoch : int
        The last finished epoch.
    rng : numpy.random.Generator
        The shuffling generator passed to :func:`pckernels.train` as ``seed``.
    optimizer : pckernels.training.Optimizer
        ``History.optimizer`` of the run.
    settings : dict
        JSON-serialisable settings to keep with it.
    inference_state : dict, optional
        ``History.update.inference_state()`` of the run (PC inference's warm-started
        state), so that a resumed run continues exactly.
    """
    opt = optimizer.state_dict()
    state = {"format": FORMAT, "epoch": int(epoch), "rng": rng.bit_generator.state,
             "optimizer": optimizer.name, "optimizer_t": opt["t"], "settings": settings}
    extra = {"train_state": np.array(json.dumps(state)), "optimizer_state1": opt["state1"]}
    if opt["state2"] is not None:
        extra["optimizer_state2"] = opt["state2"]
    if inference_state and inference_state.get("power_vecs") is not None:
        extra["power_vecs"] = np.asarray(inference_state["power_vecs"])
    feedback = getattr(net, "feedback", None)
    if feedback is not None:
        extra["feedback_kind"] = np.array(feedback.kind)
        extra["feedback"] = feedback.params
    net.save(path, **extra)


def load_checkpoint(path):
    """Read a checkpoint written by :func:`save_checkpoint`.

    Returns
    -------
    TrainingCheckpoint

    Raises
    ------
    ValueError
        Naming the file, for anything :meth:`MLP.load` rejects, a generative PC model
        (:class:`pckernels.GenerativePC`, which keeps no training state), a network saved
        without training state, or an inconsistent state.
    """
    from .gpc import is_gpc_file
    if is_gpc_file(path):
        raise ValueError(f"{path}: a generative PC model; its file holds the model, not "
                         "the training state, so it cannot be resumed")
    net = MLP.load(path)
    try:
        with np.load(os.fspath(path), allow_pickle=False) as f:
            if "train_state" not in f:
                raise ValueError("a network without training state; save it with "
                                 "pck train --save to resume it")
            state = json.loads(str(f["train_state"]))
            if not isinstance(state, dict) or state.get("format") != FORMAT:
                raise ValueError("unknown training state format")
            arrays = {key: f[key] for key in ("optimizer_state1", "optimizer_state2",
                                              "feedback_kind", "feedback", "power_vecs")
                      if key in f}
        epoch = state["epoch"]
        if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 1:
            raise ValueError(f"epoch must be an integer >= 1, got {epoch!r}")
        rng = np.random.default_rng()
        rng.bit_generator.state = state["rng"]
        from .training import Optimizer
        opt = Optimizer(net, state["optimizer"])
        opt.load_state_dict({"t": state["optimizer_t"],
                             "state1": arrays.get("optimizer_state1"),
                             "state2": arrays.get("optimizer_state2")})
        if "feedback" in arrays:
            from .feedback import Feedback
            if "feedback_kind" not in arrays:
                raise ValueError("feedback matrices without their kind")
            net.feedback = Feedback(net, str(arrays["feedback_kind"]), arrays["feedback"])
        settings = state["settings"]
        if not isinstance(settings, dict):
            raise ValueError("settings must be a mapping")
    except Exception as exc:  # json, numpy and the state checks fail in many ways
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if isinstance(exc, KeyError):
            reason = f"no {exc} in the training state"
        raise ValueError(f"{path}: cannot resume from this checkpoint ({reason})") from None
    inference = {"power_vecs": arrays["power_vecs"]} if "power_vecs" in arrays else {}
    return TrainingCheckpoint(net, epoch, state["rng"], opt.state_dict(), settings, inference)
