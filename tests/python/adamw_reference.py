"""torch.optim.AdamW on a fixed problem, for hashi's optimizer parity test.

Parameters W [4, 6] and E [5, 6] (weight decay 0.1) and b [4] (no decay); loss mean((W x + b - y)²) +
0.01·sum(E²)·mean(x); 20 steps with a varying learning rate, β = (0.9, 0.95), ε = 1e-8, and
clip_grad_norm_(1.0) before each step. Writes the problem, the learning rates, the gradient norms and the
final parameters.

usage: adamw_reference.py OUT.safetensors
"""

import sys

import torch
from safetensors.torch import save_file

torch.manual_seed(0)
W = torch.randn(4, 6, requires_grad=True)
E = torch.randn(5, 6, requires_grad=True)
b = torch.randn(4, requires_grad=True)
x = torch.randn(6, 8)
y = torch.randn(4, 8) * 3
init = {"W0": W.detach().clone(), "E0": E.detach().clone(), "b0": b.detach().clone(), "x": x, "y": y}
opt = torch.optim.AdamW([{"params": [W, E], "weight_decay": 0.1}, {"params": [b], "weight_decay": 0.0}],
                        lr=1e-2, betas=(0.9, 0.95), eps=1e-8, foreach=False)
lrs, norms = [], []
for t in range(20):
    lr = 0.05 * (t + 1) / 20
    for g in opt.param_groups:
        g["lr"] = lr
    opt.zero_grad()
    loss = ((W @ x + b[:, None] - y) ** 2).mean() + 0.01 * (E ** 2).sum() * x.mean()
    loss.backward()
    norms.append(float(torch.nn.utils.clip_grad_norm_([W, E, b], 1.0)))
    opt.step()
    lrs.append(lr)
save_file({**init, "lrs": torch.tensor(lrs, dtype=torch.float64), "norms": torch.tensor(norms, dtype=torch.float64),
           "W": W.detach(), "E": E.detach(), "b": b.detach()}, sys.argv[1])
