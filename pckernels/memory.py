"""How much memory a run needs, estimated from its shapes, and how much it may use.

Every allocation that grows with the data or the architecture is counted before it is made,
so an impossible run stops with one line instead of a ``MemoryError`` (or the kernel's OOM
killer) minutes later. The limit is the smaller of the memory this machine has available
(``MemAvailable`` in ``/proc/meminfo``) and ``$PCK_MAX_MEMORY`` (e.g. ``8G``, ``512M``).
"""
import os
import re

import numpy as np

__all__ = ["MemoryLimitError", "parse_bytes", "format_bytes", "describe_sizes",
           "available_memory",
           "memory_limit", "check_memory", "training_bytes", "MAX_WIDTH"]

#: Widest layer accepted anywhere (a weight matrix of 2**24 x 2**24 is far beyond any
#: machine; the bound keeps every size product exact in int64).
MAX_WIDTH = 2 ** 24

#: Rows per chunk of :meth:`pckernels.MLP.forward` (evaluation).
EVAL_CHUNK = 4096

_UNITS = {"": 1, "b": 1, "k": 2 ** 10, "kb": 2 ** 10, "kib": 2 ** 10, "m": 2 ** 20,
          "mb": 2 ** 20, "mib": 2 ** 20, "g": 2 ** 30, "gb": 2 ** 30, "gib": 2 ** 30,
          "t": 2 ** 40, "tb": 2 ** 40, "tib": 2 ** 40}


class MemoryLimitError(ValueError):
    """A run would need more memory than the limit; the message is one line."""


def parse_bytes(text):
    """``"8G"`` -> 8 * 2**30; plain numbers are bytes. Raises ValueError on anything else."""
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]*)?)\s*([a-zA-Z]*)\s*", str(text))
    if not match or match.group(2).lower() not in _UNITS:
        raise ValueError(f"{text!r} is not a memory size (examples: 512M, 8G, 1.5T)")
    value = float(match.group(1)) * _UNITS[match.group(2).lower()]
    if not 0 < value < 2 ** 62:
        raise ValueError(f"{text!r}: a memory size must be > 0 and < 4 EiB")
    return int(value)


def format_bytes(n):
    """Bytes as a short human string: ``74.5 GiB``."""
    n = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} EiB"


def available_memory():
    """Bytes this machine can give a new allocation now (``MemAvailable``), or None."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def memory_limit(max_memory=None):
    """The byte budget of a run and where it comes from: ``(bytes, source)``.

    ``max_memory`` (bytes, or a string such as ``"8G"``) replaces ``$PCK_MAX_MEMORY``; the
    available memory of the machine bounds both. ``bytes`` is None when nothing is known.
    """
    source = "--max-memory"
    if max_memory is None:
        env = os.environ.get("PCK_MAX_MEMORY", "").strip()
        if env:
            try:
                max_memory = parse_bytes(env)
            except ValueError as exc:
                raise MemoryLimitError(f"PCK_MAX_MEMORY: {exc}") from None
            source = "PCK_MAX_MEMORY"
    elif isinstance(max_memory, str):
        max_memory = parse_bytes(max_memory)
    available = available_memory()
    if max_memory is not None and (available is None or max_memory <= available):
        return int(max_memory), source
    if available is not None:
        return available, "the memory available on this machine"
    return None, None


def check_memory(needed, what, max_memory=None):
    """Raise :class:`MemoryLimitError` if ``needed`` bytes exceed :func:`memory_limit`."""
    limit, source = memory_limit(max_memory)
    if limit is not None and needed > limit:
        raise MemoryLimitError(
            f"{what} needs about {format_bytes(needed)} of memory, more than "
            f"{format_bytes(limit)} ({source}); use smaller layers or batches, or raise the "
            "limit with --max-memory / PCK_MAX_MEMORY if the machine has the memory")
    return needed


def describe_sizes(sizes):
    """``[64, 100, 100, 100, 10]`` -> ``"64-100x3-10"`` (runs of equal hidden widths)."""
    sizes = [int(s) for s in sizes]
    hidden, parts = sizes[1:-1], [str(sizes[0])]
    i = 0
    while i < len(hidden):
        j = i
        while j < len(hidden) and hidden[j] == hidden[i]:
            j += 1
        parts.append(f"{hidden[i]}x{j - i}" if j - i > 2 else "-".join([str(hidden[i])] * (j - i)))
        i = j
    return "-".join(parts + [str(sizes[-1])])


def _check_sizes(sizes):
    sizes = [int(s) for s in sizes]
    if len(sizes) < 2 or min(sizes) < 1:
        raise ValueError(f"sizes needs at least two widths >= 1, got {sizes}")
    if max(sizes) > MAX_WIDTH:
        raise MemoryLimitError(f"layer width {max(sizes)} is larger than the maximum "
                               f"{MAX_WIDTH}")
    return sizes


def training_bytes(sizes, batch_size, *, dtype="float32", algo="bp", optimizer="sgd",
                   loss="nll", n_eval=0, cosine=False, threads=1, n_train=0,
                   param="standard", save=False):
    """Bytes a training run allocates beyond its data, from the shapes alone.

    Counted in exact integers (no overflow for any width): the parameters and the buffers
    of their layout (gradient, three backups, optimizer state, backprop's gradient for the
    cosine, PC's per-chunk partial gradients), the activation workspaces of a batch and of
    an evaluation chunk, PC's eight activation-sized buffers, and the batch gathers.

    Parameters
    ----------
    sizes : sequence of int
        Layer widths ``(n_0, ..., n_N)``.
    batch_size : int
    dtype : {"float32", "float64"}
    algo : str
        ``"bp"`` or a PC variant.
    optimizer : {"sgd", "adam"}
    loss : {"nll", "mse"}
        ``mse`` one-hot encodes the training labels.
    n_eval : int
        Largest evaluation set (rows); evaluated in chunks of 4096.
    cosine : bool
    threads : int
        Chunks of the PC schedule (each holds a partial gradient).
    n_train : int
        Training rows (the label and one-hot target arrays).
    param : {"standard", "mupc"}
        ``mupc`` adds the multipliers and the optimizers' scaled gradients.
    save : bool
        ``pck train --save``: the copy of the last finished epoch's parameters and
        optimizer state kept for an interruption.

    Returns
    -------
    int
    """
    sizes = _check_sizes(sizes)
    item = np.dtype(dtype).itemsize
    n_params = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
    activations = sum(sizes[1:])
    batch = int(batch_size)
    # params, gradient, two per-batch backups and the per-epoch one, momentum (+ Adam's
    # second moment), the CLI's trial optimizer
    param_buffers = 6 + (1 if optimizer == "adam" else 0) + 1
    if cosine and algo != "bp":
        param_buffers += 1
    if algo != "bp":
        param_buffers += max(1, int(threads))
    if param == "mupc":
        param_buffers += 3
    if save:
        param_buffers += 2 + (1 if optimizer == "adam" else 0)
    total = param_buffers * n_params * item
    total += 2 * batch * activations * item                         # train workspace h, d
    if algo != "bp":
        total += 8 * batch * activations * item                     # PC buffers
    if algo in ("vpc", "scaled", "ipc"):
        # the safeguarded loop of the auto step rule: latents before a step, optimizer
        # moments and their copies; per-row losses, energies, step factors
        total += 5 * batch * activations * item + 6 * batch * 8
    if algo == "ipc":
        total += n_params * (item + 8)                              # per-step gradient, sum
    chunk = min(EVAL_CHUNK, max(int(n_eval), 0))
    if chunk:
        total += 2 * chunk * activations * item                     # evaluation workspace
        total += int(n_eval) * (sizes[-1] * item + 8)               # outputs, predictions
    total += batch * (sizes[0] + sizes[-1]) * item                  # batch gathers
    total += int(n_train) * (8 + (sizes[-1] * item if loss == "mse" else 0))  # labels
    return int(total)
