r"""Pair-adaptive temperatures (AMCL Sec. 3) and the temperature regulariser :math:`\Omega`.

A temperature network maps a pair of projected features :math:`(u, v)` of one head to
:math:`\tau(u, v) \in [\tau_{\min}, \tau_{\max}]`. Every network here works on head-stacked
features ``(C, N, d')`` and offers three access patterns the losses need:

* ``paired(U, V)``: ``(C, N, d'), (C, N, d') -> (C, N)``, row ``n`` with row ``n``;
* ``pairwise(U, V)``: ``(C, N, d'), (C, M, d') -> (C, N, M)``, every pair;
* ``gathered(U, V, idx)``: ``(C, N, d'), (C, M, d'), (C, N, k) -> (C, N, k)``, the pairs
  ``(U[c, n], V[c, idx[c, n, j]])`` only (hardest negatives).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor, nn

from paperzoo.core.checks import (
    check_choice,
    check_float_tensor,
    check_positive,
    check_positive_int,
)

__all__ = ["ConstantTemperature", "PairTemperature", "TemperatureNet", "omega"]

TemperatureForm = Literal["concat", "dot"]


def omega(tau: Tensor, kappa: float) -> Tensor:
    r"""The temperature regulariser :math:`\Omega(\tau) = \tfrac{\kappa}{2}\log\tau + 1/\tau`.

    The negative log-normaliser of a Gaussian likelihood whose variance is tied to :math:`\tau`
    (``kappa`` = the projection dimension :math:`d'` in the official code). With :math:`\beta = 1`
    and :math:`\kappa = d'`, :math:`-s/\tau + \Omega(\tau)` is minimised at
    :math:`\tau^* = 2(1 - s)/d'`.

    Args:
        tau: temperatures, any shape, all ``> 0``.
        kappa: :math:`\kappa > 0`.

    Returns:
        :math:`\Omega(\tau)`, the shape of ``tau``.

    Raises:
        TypeError: ``tau`` not a floating-point tensor; ValueError: ``kappa <= 0``.
    """
    check_float_tensor("tau", tau)
    k = check_positive("kappa", kappa)
    return 0.5 * k * torch.log(tau) + torch.reciprocal(tau)


def _check_heads(name: str, x: Tensor, d: int | None = None) -> None:
    check_float_tensor(name, x, 3)
    if d is not None and x.shape[-1] != d:
        raise ValueError(f"{name}: expected feature dimension {d}, got shape {tuple(x.shape)}")


class TemperatureNet(nn.Module):
    """Base of the temperature modules: bounds ``tau_min``/``tau_max`` and the three access patterns.

    Subclasses implement :meth:`pairwise` and :meth:`gathered`; :meth:`paired` is
    ``gathered`` with ``idx = arange(N)``. ``num_heads = None`` accepts any number of heads.
    """

    tau_min: float
    tau_max: float
    num_heads: int | None = None

    def check_heads(self, c: int) -> None:
        """Raise ``ValueError`` when ``c`` heads do not match the module's ``num_heads``."""
        if self.num_heads is not None and c != self.num_heads:
            raise ValueError(
                f"z1: expected {self.num_heads} heads (the temperature module's num_heads), got {c}"
            )

    def pairwise(self, u: Tensor, v: Tensor) -> Tensor:
        """Temperatures of every pair: ``(C, N, d'), (C, M, d') -> (C, N, M)``."""
        raise NotImplementedError

    def gathered(self, u: Tensor, v: Tensor, idx: Tensor) -> Tensor:
        """Temperatures of the pairs ``(u[c, n], v[c, idx[c, n, j]])``: ``-> (C, N, k)``."""
        raise NotImplementedError

    def paired(self, u: Tensor, v: Tensor) -> Tensor:
        """Temperatures of row-aligned pairs: ``(C, N, d'), (C, N, d') -> (C, N)``."""
        c, n = u.shape[0], u.shape[1]
        idx = torch.arange(n, device=u.device).view(1, n, 1).expand(c, n, 1)
        return self.gathered(u, v, idx).squeeze(-1)


class ConstantTemperature(TemperatureNet):
    """A fixed temperature ``tau`` for every pair (ablations, and AMCL's reduction to NT-Xent).

    Args:
        tau: the temperature, ``> 0``.
    """

    def __init__(self, tau: float = 0.5) -> None:
        super().__init__()
        self.tau = check_positive("tau", tau)
        self.tau_min = self.tau_max = self.tau

    def pairwise(self, u: Tensor, v: Tensor) -> Tensor:
        """``(C, N, d'), (C, M, d') -> (C, N, M)`` filled with ``tau``."""
        return u.new_full((u.shape[0], u.shape[1], v.shape[1]), self.tau)

    def gathered(self, u: Tensor, v: Tensor, idx: Tensor) -> Tensor:
        """``-> (C, N, k)`` filled with ``tau``."""
        return u.new_full(tuple(idx.shape), self.tau)

    def forward(self, u: Tensor, v: Tensor) -> Tensor:
        """``u, v (..., d') -> tau (...)`` (constant)."""
        return u.new_full(u.shape[:-1], self.tau)

    def extra_repr(self) -> str:
        return f"tau={self.tau}"


class PairTemperature(TemperatureNet):
    r"""The pair-adaptive temperature network :math:`\tau(u, v)` of AMCL.

    ``form="concat"`` (paper figure, 2024 code): :math:`\tau = \tau_{\min} + (\tau_{\max} -
    \tau_{\min})\,\sigma(w_2^\top \mathrm{ReLU}(W_1 [u; v] + b_1) + b_2)`, ``Linear(2d', hidden)
    -ReLU-Linear(hidden, 1)``. The first layer is split as :math:`W_a u + W_b v + b_1`, so pairwise
    temperatures cost :math:`O(NMh)` after :math:`O((N + M) d' h)` per-sample projections (exact;
    still builds ``(C, N, M, hidden)`` activations). ``form="dot"`` (the v2 release): a
    :math:`d' \to h \to d'` MLP :math:`\phi` and :math:`\tau = \tau_{\min} + (\tau_{\max} -
    \tau_{\min})\,\sigma(-\langle\phi(u), \phi(v)\rangle)`, symmetric, pairwise by one matmul.

    Args:
        dim: projection dimension :math:`d'`.
        hidden: hidden width (default 128; the v2 ``dot`` form uses ``dim``).
        tau_min, tau_max: bounds, ``0 < tau_min < tau_max`` (default ``[0.05, 1.0]``).
        num_heads: the number of heads ``C`` the inputs carry.
        shared: one network for all heads (paper figure, v2) or one per head (2024 code).
        symmetric: average :math:`\tau(u, v)` and :math:`\tau(v, u)` (``concat`` form only; the
            ``dot`` form is symmetric already).
        form: ``"concat"`` or ``"dot"``.

    Deviation: the library default range is ``[0.05, 1.0]`` (the code's ``[1e-5, 2.0]`` lets the
    positive weight reach ``1e5``; see ``AMCLConfig.official()`` for it).

    Raises:
        ValueError: a bad dimension, bounds, or form.
    """

    def __init__(
        self,
        dim: int,
        hidden: int = 128,
        tau_min: float = 0.05,
        tau_max: float = 1.0,
        num_heads: int = 1,
        shared: bool = True,
        symmetric: bool = False,
        form: TemperatureForm = "concat",
    ) -> None:
        super().__init__()
        self.dim = check_positive_int("dim", dim)
        self.hidden = check_positive_int("hidden", hidden)
        self.tau_min = check_positive("tau_min", tau_min)
        self.tau_max = check_positive("tau_max", tau_max)
        if not self.tau_min < self.tau_max:
            raise ValueError(
                f"tau_min, tau_max: expected 0 < tau_min < tau_max, got {tau_min}, {tau_max}"
            )
        self.num_heads = check_positive_int("num_heads", num_heads)
        self.shared = bool(shared)
        self.symmetric = bool(symmetric)
        self.form: TemperatureForm = check_choice("form", form, ("concat", "dot"))
        g = 1 if self.shared else self.num_heads
        d, h = self.dim, self.hidden
        if self.form == "concat":
            self.w_a = nn.Parameter(torch.empty(g, d, h))
            self.w_b = nn.Parameter(torch.empty(g, d, h))
            self.b_1 = nn.Parameter(torch.empty(g, 1, h))
            self.w_2 = nn.Parameter(torch.empty(g, h, 1))
            self.b_2 = nn.Parameter(torch.empty(g, 1, 1))
        else:
            self.w_a = nn.Parameter(torch.empty(g, d, h))
            self.b_1 = nn.Parameter(torch.empty(g, 1, h))
            self.w_2 = nn.Parameter(torch.empty(g, h, d))
            self.b_2 = nn.Parameter(torch.empty(g, 1, d))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """PyTorch's ``nn.Linear`` initialisation (uniform in ``±1/sqrt(fan_in)``), per network."""
        fan1 = 2 * self.dim if self.form == "concat" else self.dim
        b1 = 1.0 / math.sqrt(fan1)
        b2 = 1.0 / math.sqrt(self.hidden)
        with torch.no_grad():
            for p in (self.w_a, self.b_1):
                p.uniform_(-b1, b1)
            if self.form == "concat":
                self.w_b.uniform_(-b1, b1)
            for p in (self.w_2, self.b_2):
                p.uniform_(-b2, b2)

    def _squash(self, logit: Tensor) -> Tensor:
        return self.tau_min + (self.tau_max - self.tau_min) * torch.sigmoid(logit)

    def _check(self, u: Tensor, v: Tensor) -> None:
        _check_heads("u", u, self.dim)
        _check_heads("v", v, self.dim)
        if u.shape[0] != v.shape[0]:
            raise ValueError(
                f"u, v: expected the same number of heads, got {u.shape[0]} and {v.shape[0]}"
            )
        self.check_heads(u.shape[0])

    def _params(self, dtype: torch.dtype, head: int | None = None) -> tuple[Tensor, ...]:
        """The network weights in ``dtype`` (the features'), all heads' or (``head``) one head's
        slice (autograd-connected)."""
        names = (
            ("w_a", "w_b", "b_1", "w_2", "b_2")
            if self.form == "concat"
            else ("w_a", "b_1", "w_2", "b_2")
        )
        ps: tuple[Tensor, ...] = tuple(getattr(self, n).to(dtype) for n in names)
        if head is None or self.shared:
            return ps
        return tuple(p[head : head + 1] for p in ps)

    @staticmethod
    def _phi(x: Tensor, ps: tuple[Tensor, ...]) -> Tensor:
        """``dot`` form: phi(x) per head, ``(C, N, d') -> (C, N, d')``."""
        w_a, b_1, w_2, b_2 = ps
        return torch.relu(x @ w_a + b_1) @ w_2 + b_2

    @staticmethod
    def _concat_logits(hu: Tensor, hv: Tensor, ps: tuple[Tensor, ...]) -> Tensor:
        """``hu (C, N, 1, h) + hv (C, N|1, k, h) -> logits (C, N, k)``."""
        b_1, w_2, b_2 = ps[2], ps[3], ps[4]
        hid = torch.relu(hu + hv + b_1.unsqueeze(1))
        return (hid @ w_2.unsqueeze(1)).squeeze(-1) + b_2

    def pairwise(self, u: Tensor, v: Tensor) -> Tensor:
        """Temperatures of every pair, ``(C, N, d'), (C, M, d') -> (C, N, M)`` (separable trick)."""
        self._check(u, v)
        return self._pairwise(u, v, self._params(u.dtype))

    def _pairwise(self, u: Tensor, v: Tensor, ps: tuple[Tensor, ...]) -> Tensor:
        if self.form == "dot":
            return self._squash(-(self._phi(u, ps) @ self._phi(v, ps).transpose(1, 2)))
        w_a, w_b = ps[0], ps[1]
        tau = self._squash(self._concat_logits((u @ w_a).unsqueeze(2), (v @ w_b).unsqueeze(1), ps))
        if self.symmetric:
            rev = self._concat_logits((u @ w_b).unsqueeze(2), (v @ w_a).unsqueeze(1), ps)
            tau = 0.5 * (tau + self._squash(rev))
        return tau

    def gathered(self, u: Tensor, v: Tensor, idx: Tensor) -> Tensor:
        """Temperatures of ``(u[c, n], v[c, idx[c, n, j]])``, ``idx (C, N, k)`` -> ``(C, N, k)``."""
        self._check(u, v)
        return self._gathered(u, v, idx, self._params(u.dtype))

    def _gathered(self, u: Tensor, v: Tensor, idx: Tensor, ps: tuple[Tensor, ...]) -> Tensor:
        c, n, k = idx.shape

        def take(x: Tensor) -> Tensor:  # rows of (C, M, w) at idx -> (C, N, k, w)
            w = x.shape[-1]
            flat = idx.reshape(c, n * k, 1).expand(c, n * k, w)
            return torch.gather(x, 1, flat).view(c, n, k, w)

        if self.form == "dot":
            score = (self._phi(u, ps).unsqueeze(2) * take(self._phi(v, ps))).sum(-1)
            return self._squash(-score)
        w_a, w_b = ps[0], ps[1]
        tau = self._squash(self._concat_logits((u @ w_a).unsqueeze(2), take(v @ w_b), ps))
        if self.symmetric:
            rev = self._concat_logits((u @ w_b).unsqueeze(2), take(v @ w_a), ps)
            tau = 0.5 * (tau + self._squash(rev))
        return tau

    def forward(self, u: Tensor, v: Tensor, head: int | None = None) -> Tensor:
        """:math:`\\tau(u, v)` of row-aligned pairs.

        Args:
            u, v: ``(..., d')``, the same shape. Without ``head``: ``(C, ..., d')`` with ``C =
                num_heads`` (head ``c`` through its network, or the shared one); with ``head``:
                any leading shape, all through head ``head``'s network.
            head: a head index in ``[0, num_heads)``, or None.

        Returns:
            ``tau (...)``, in ``[tau_min, tau_max]``.
        """
        check_float_tensor("u", u)
        check_float_tensor("v", v)
        if u.shape != v.shape:
            raise ValueError(
                f"u, v: expected the same shape, got {tuple(u.shape)} and {tuple(v.shape)}"
            )
        if head is not None:
            h = check_positive_int("head", head, minimum=0)
            if h >= (self.num_heads or 1):
                raise ValueError(f"head: expected an index in [0, {self.num_heads}), got {head}")
            lead = u.shape[:-1]
            uu, vv = u.reshape(1, -1, u.shape[-1]), v.reshape(1, -1, v.shape[-1])
            _check_heads("u", uu, self.dim)
            n = uu.shape[1]
            idx = torch.arange(n, device=u.device).view(1, n, 1)
            return self._gathered(uu, vv, idx, self._params(u.dtype, h)).view(lead)
        if u.dim() < 2:
            raise ValueError(
                f"u: expected (C, ..., d') with C = num_heads, got shape {tuple(u.shape)}"
            )
        lead = u.shape[:-1]
        uu = u.reshape(u.shape[0], -1, u.shape[-1])
        return self.paired(uu, v.reshape(uu.shape)).view(lead)

    def extra_repr(self) -> str:
        return (
            f"dim={self.dim}, hidden={self.hidden}, tau=[{self.tau_min}, {self.tau_max}], "
            f"num_heads={self.num_heads}, shared={self.shared}, symmetric={self.symmetric}, "
            f"form={self.form!r}"
        )
