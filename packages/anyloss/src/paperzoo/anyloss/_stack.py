"""M independent small MLPs trained at once (one batched matmul per layer), for the reproduction.

Member ``m`` is ``Linear(F, H) -> BatchNorm1d(H) -> sigmoid -> Linear(H, 1)``, the spec's network
(the official code's 2-hidden-node MLP with ``H = 2``). Members share no parameter and BatchNorm
normalises each member's channels separately, so with an element-wise optimiser (Adam) and the
*sum* of the members' losses each member follows exactly the trajectory of training it alone on
the same batches; every member starts from the same weights (a paired comparison of losses).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from paperzoo.core.checks import check_positive_int


class MLPStack(nn.Module):
    """``members`` copies of one freshly initialised MLP ``F -> H -> BN -> sigmoid -> 1``.

    Input ``(B, F)``; output logits ``(B, members)`` (column ``m``: member ``m``).
    """

    def __init__(self, members: int, in_features: int, hidden: int, seed: int) -> None:
        super().__init__()
        self.members = check_positive_int("members", members)
        self.hidden = check_positive_int("hidden", hidden)
        g = torch.Generator().manual_seed(seed)
        first, second = nn.Linear(in_features, hidden), nn.Linear(hidden, 1)
        for layer in (first, second):  # PyTorch's default init, drawn from our generator
            bound = 1.0 / layer.in_features**0.5
            with torch.no_grad():
                layer.weight.uniform_(-bound, bound, generator=g)
                layer.bias.uniform_(-bound, bound, generator=g)
        m = self.members
        self.w1 = nn.Parameter(first.weight.detach().T.expand(m, -1, -1).clone())  # (M, F, H)
        self.b1 = nn.Parameter(first.bias.detach().expand(m, -1).clone())  # (M, H)
        self.bn = nn.BatchNorm1d(m * hidden)
        self.w2 = nn.Parameter(second.weight.detach()[0].expand(m, -1).clone())  # (M, H)
        self.b2 = nn.Parameter(second.bias.detach().expand(m).clone())  # (M,)

    def forward(self, x: Tensor) -> Tensor:
        """``x``: ``(B, F)`` -> logits ``(B, M)``."""
        b = x.shape[0]
        h = torch.einsum("bf,mfh->bmh", x, self.w1) + self.b1
        h = torch.sigmoid(self.bn(h.reshape(b, -1)).reshape(b, self.members, self.hidden))
        return torch.einsum("bmh,mh->bm", h, self.w2) + self.b2

    def member(self, m: int) -> nn.Sequential:
        """Member ``m`` as a plain ``nn.Sequential`` (a copy, for tests and inspection)."""
        first = nn.Linear(self.w1.shape[1], self.hidden)
        bn = nn.BatchNorm1d(self.hidden)
        second = nn.Linear(self.hidden, 1)
        sl = slice(m * self.hidden, (m + 1) * self.hidden)
        with torch.no_grad():
            first.weight.copy_(self.w1[m].T)
            first.bias.copy_(self.b1[m])
            bn.weight.copy_(self.bn.weight[sl])
            bn.bias.copy_(self.bn.bias[sl])
            for mine, theirs in (
                (bn.running_mean, self.bn.running_mean),
                (bn.running_var, self.bn.running_var),
            ):
                assert mine is not None and theirs is not None
                mine.copy_(theirs[sl])
            second.weight.copy_(self.w2[m].unsqueeze(0))
            second.bias.copy_(self.b2[m].unsqueeze(0))
        return nn.Sequential(first, bn, nn.Sigmoid(), second)
