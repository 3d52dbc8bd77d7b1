"""Offline "synthetic identities": a stand-in for face data, with a verification protocol.

Each identity ``c`` has a latent ``z_c ~ N(0, I_L)``; a sample is ``x = g(z_c + σ ε) + ν`` with
``g`` a fixed random two-layer tanh MLP (``L -> H -> F``, weights ``N(0, 1/fan_in)``, no bias),
``ε ~ N(0, I)`` and ``ν ~ N(0, noise² I)`` (spec section 6: L = 32, H = 256, F = 128, σ = 0.8,
noise 0.1). Training and test identities are disjoint, so the test is open-set verification
as in face recognition.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from paperzoo.core.checks import check_positive, check_positive_int

__all__ = ["IdentitySplit", "SyntheticIdentities", "synthetic_identities", "verification_pairs"]


@dataclass(frozen=True)
class SyntheticIdentities:
    """Samples ``x`` ``(N, F)`` (float32) and identity labels ``y`` ``(N,)`` (0-based)."""

    x: Tensor
    y: Tensor


@dataclass(frozen=True)
class IdentitySplit:
    """Training identities ``0..n_train-1`` and disjoint test identities, standardised with the
    training statistics."""

    train: SyntheticIdentities
    test: SyntheticIdentities


def synthetic_identities(
    num_identities: int = 600,
    per_identity: int = 40,
    num_train_identities: int = 500,
    *,
    latent_dim: int = 32,
    hidden_dim: int = 256,
    out_dim: int = 128,
    sigma: float = 0.8,
    noise: float = 0.1,
    seed: int = 0,
) -> IdentitySplit:
    """Draw the set: ``num_identities × per_identity`` samples, split by identity.

    Returns:
        :class:`IdentitySplit` with ``train.x`` ``(num_train_identities · per_identity, out_dim)``
        labels ``0..num_train_identities-1`` and ``test`` the remaining identities (labels
        ``0..num_identities - num_train_identities - 1``).

    Raises:
        TypeError/ValueError: non-positive sizes, ``num_train_identities >= num_identities``,
            ``sigma <= 0`` or ``noise < 0``.
    """
    n_id = check_positive_int("num_identities", num_identities, minimum=2)
    per = check_positive_int("per_identity", per_identity, minimum=2)
    n_tr = check_positive_int("num_train_identities", num_train_identities)
    if n_tr >= n_id:
        raise ValueError(
            f"num_train_identities: expected < num_identities ({n_id}), got {num_train_identities}"
        )
    dims = [
        check_positive_int(n, v)
        for n, v in (("latent_dim", latent_dim), ("hidden_dim", hidden_dim), ("out_dim", out_dim))
    ]
    s = check_positive("sigma", sigma)
    nu = check_positive("noise", noise, allow_zero=True)
    g = torch.Generator().manual_seed(seed)
    w1 = torch.randn(dims[0], dims[1], generator=g) / dims[0] ** 0.5
    w2 = torch.randn(dims[1], dims[2], generator=g) / dims[1] ** 0.5
    z = torch.randn(n_id, dims[0], generator=g)
    y = torch.arange(n_id).repeat_interleave(per)
    latent = z[y] + s * torch.randn(y.numel(), dims[0], generator=g)
    x = torch.tanh(latent @ w1) @ w2 + nu * torch.randn(y.numel(), dims[2], generator=g)
    train = y < n_tr
    mean, std = x[train].mean(0), x[train].std(0).clamp_min(1e-8)
    x = (x - mean) / std
    return IdentitySplit(
        SyntheticIdentities(x[train], y[train]),
        SyntheticIdentities(x[~train], y[~train] - n_tr),
    )


def verification_pairs(
    labels: Tensor, num_impostor: int = 20000, *, seed: int = 0
) -> tuple[Tensor, Tensor, Tensor]:
    """Every genuine pair (``i < j``, same label) and ``num_impostor`` random impostor pairs.

    Returns:
        ``(a, b, issame)``: row indices ``(P,)``, ``(P,)`` and the bool labels ``(P,)``.
    """
    check_positive_int("num_impostor", num_impostor)
    n = labels.numel()
    i, j = torch.triu_indices(n, n, offset=1)
    same = labels[i] == labels[j]
    gi, gj = i[same], j[same]
    g = torch.Generator().manual_seed(seed)
    ai = torch.randint(0, n, (4 * num_impostor,), generator=g)
    bi = torch.randint(0, n, (4 * num_impostor,), generator=g)
    diff = labels[ai] != labels[bi]
    ai, bi = ai[diff][:num_impostor], bi[diff][:num_impostor]
    if ai.numel() < num_impostor:
        raise ValueError(f"num_impostor: could draw only {ai.numel()} impostor pairs")
    a = torch.cat([gi, ai])
    b = torch.cat([gj, bi])
    issame = torch.cat(
        [torch.ones_like(gi, dtype=torch.bool), torch.zeros_like(ai, dtype=torch.bool)]
    )
    return a, b, issame
