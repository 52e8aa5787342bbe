"""PyTorch eager: a backprop training step, and fpa the way Torch2PC runs it.

Torch2PC-style fpa: one forward pass whose graph is kept (predictions and Jacobians are
frozen at their feedforward values), then per inference step and per layer an autograd
VJP ``torch.autograd.grad(out_l, in_l, grad_outputs=e_{l+1}, retain_graph=True)``, all
from step-t errors (synchronous sweep), then the parameter VJPs and the SGD update.
"""
from . import Unavailable, init_params, random_batch


def _torch():
    try:
        import torch
    except ImportError as exc:
        raise Unavailable(f"torch not installed ({exc})") from None
    return torch


def make(sizes, batch, dtype="float32", steps=None, step_size=1.0, lr=0.01, momentum=0.9,
         seed=0, threads=None):
    """Step callables ``{"forward", "bp", "fpa"}`` on a fixed random batch, and ``params``
    (the flat parameters in pckernels' layout, for tests)."""
    torch = _torch()
    if threads:
        torch.set_num_threads(int(threads))
    tdt = getattr(torch, str(dtype))
    Ws, bs = init_params(sizes, dtype, seed)
    layers = []
    for W, b in zip(Ws, bs):
        lin = torch.nn.Linear(W.shape[0], W.shape[1]).to(tdt)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(W.T.copy()))
            lin.bias.copy_(torch.from_numpy(b))
        layers.append(lin)
    n = len(layers)
    mods = [torch.nn.Sequential(lin, torch.nn.Tanh()) if l < n - 1 else lin
            for l, lin in enumerate(layers)]
    model = torch.nn.Sequential(*mods)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    Xn, yn = random_batch(sizes, batch, dtype, seed)
    X, y = torch.from_numpy(Xn), torch.from_numpy(yn)
    loss_fn = torch.nn.CrossEntropyLoss()
    T = len(sizes) - 2 if steps is None else int(steps)

    def forward():
        with torch.no_grad():
            model(X)

    def bp():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(X), y)
        loss.backward()
        opt.step()

    def fpa():
        opt.zero_grad(set_to_none=True)
        ins, outs = [], []
        h = X
        for l, m in enumerate(mods):
            hin = h.detach().requires_grad_(l > 0)
            out = m(hin)
            ins.append(hin)
            outs.append(out)
            h = out
        loss = loss_fn(outs[-1], y)
        # errors as gradients d = -e: d_N fixed, latents start at 0 (x = mu)
        d_out = torch.autograd.grad(loss, outs[-1], retain_graph=True)[0]
        d = [torch.zeros_like(o) for o in outs[:-1]] + [d_out]
        for _ in range(T):
            v = [torch.autograd.grad(outs[l], ins[l], grad_outputs=d[l], retain_graph=True)[0]
                 for l in range(1, n)]
            for l in range(1, n):
                d[l - 1] = d[l - 1] + step_size * (v[l - 1] - d[l - 1])
        for l in range(n):
            outs[l].backward(d[l], inputs=list(mods[l].parameters()), retain_graph=True)
        opt.step()

    def flat_params():
        import numpy as np
        return np.concatenate([np.concatenate([lin.weight.detach().numpy().T.ravel(),
                                               lin.bias.detach().numpy()]) for lin in layers])

    return {"forward": forward, "bp": bp, "fpa": fpa, "params": flat_params}
