from __future__ import annotations

import torch

#: weight_decay (lambda) of the convex test models.
LAM = 1e-2


def flat(model: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().double().reshape(-1) for p in model.parameters()])
