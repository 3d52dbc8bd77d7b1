r"""L2 multinomial logistic regression on frozen features, in scikit-learn's convention.

.. math::

    \min_{W, b}\; C \sum_{j=1}^m \mathrm{CE}(W x_j + b,\, y_j) + \tfrac12 \lVert W \rVert_F^2

(the intercepts :math:`b` are not penalised). The paper's probes and simulations use
``sklearn.linear_model.LogisticRegression(solver="lbfgs", max_iter=1000)`` (``C = 1`` in the
simulation, per backbone on CIFAR); :class:`LogisticHead` solves the same problem with full-batch
L-BFGS (strong-Wolfe line search) in float64.

Two pitfalls when comparing with scikit-learn:

* the intercepts of a softmax head are defined up to a shared constant; compare centred intercepts
  (scikit-learn's multinomial ones sum to zero, ours do too at the optimum, since the penalty does
  not pin them and L-BFGS started from zero never moves their mean);
* for ``K = 2`` scikit-learn fits one weight vector ``w`` with penalty :math:`\tfrac12\lVert w
  \rVert^2`; a two-row softmax head with ``C`` equals scikit-learn binary with ``C_sklearn = 2 C``
  (symmetric optimum :math:`W_1 = -W_0 = w/2`). To match a reference run with scikit-learn's
  ``C = 1`` on two classes use ``C = 0.5`` here.
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from paperzoo.core.checks import (
    Reduction,
    check_finite,
    check_float_tensor,
    check_labels,
    check_positive,
    check_positive_int,
    check_reduction,
    reduce,
)

__all__ = ["LogisticHead", "logistic_objective"]

log = logging.getLogger(__name__)


def _check_head(weight: Tensor, bias: Tensor) -> tuple[int, int]:
    check_float_tensor("W", weight, ndim=2)
    check_float_tensor("b", bias, ndim=1)
    if bias.shape[0] != weight.shape[0]:
        raise ValueError(f"b: expected shape ({weight.shape[0]},), got {tuple(bias.shape)}")
    k, n = weight.shape
    if k < 2:
        raise ValueError(f"W: expected at least 2 classes (rows), got shape {tuple(weight.shape)}")
    return k, n


def _objective_terms(weight: Tensor, bias: Tensor, x: Tensor, y: Tensor, c: float) -> Tensor:
    """Per-example ``C * CE_j + ||W||^2 / (2 m)``, ``(m,)`` (the rows sum to the objective)."""
    ce = F.cross_entropy(x @ weight.T + bias, y, reduction="none")
    return c * ce + weight.square().sum() / (2 * x.shape[0])


def logistic_objective(
    W: Tensor,
    b: Tensor,
    x: Tensor,
    y: Tensor,
    C: float = 1.0,
    reduction: Reduction = "sum",
    *,
    validate: bool = True,
) -> Tensor:
    r"""scikit-learn's L2 logistic-regression objective :math:`C\sum_j \mathrm{CE}_j + \tfrac12\lVert W\rVert_F^2`.

    Args:
        W: weights ``(K, n)``; b: intercepts ``(K,)`` (not penalised).
        x: features ``(m, n)``; y: labels ``(m,)`` in ``[0, K)``.
        C: inverse regularisation strength, ``> 0`` (default 1, as scikit-learn).
        reduction: ``"sum"`` (default): the objective; ``"mean"``: the objective over ``m``;
            ``"none"``: ``(m,)`` rows :math:`C\,\mathrm{CE}_j + \lVert W\rVert^2/(2m)` that sum to
            the objective (the penalty shared equally by the rows of the batch).
        validate: check finiteness and labels (host syncs).

    Returns:
        A scalar, or ``(m,)`` for ``"none"``.

    Raises:
        TypeError/ValueError: non-float tensors, wrong ranks or shapes, NaN/inf, labels out of
            range, ``C <= 0``, fewer than 2 classes.
    """
    check_reduction(reduction)
    c = check_positive("C", C)
    k, n = _check_head(W, b)
    check_float_tensor("x", x, ndim=2, nonempty=True)
    if x.shape[1] != n:
        raise ValueError(f"x: expected {n} features (columns), got shape {tuple(x.shape)}")
    check_finite("x", x, validate=validate)
    check_labels("y", y, n=x.shape[0], num_classes=k, like=x, validate=validate)
    return reduce(_objective_terms(W, b, x, y, c), reduction)


class LogisticHead(nn.Module):
    """A linear softmax head fitted by L2 logistic regression (scikit-learn's objective).

    ``fit(x, y)`` minimises :func:`logistic_objective` with full-batch L-BFGS (strong-Wolfe line
    search, history 10) in float64 from zero weights (or the current ones with
    ``warm_start=True``); ``forward(x) -> logits (B, K)``; ``objective(x, y)`` is the module door
    to :func:`logistic_objective` with the head's weights.

    Args:
        n_features: ``n``; n_classes: ``K >= 2`` (see the module note on ``K = 2``).
        C: inverse regularisation strength, ``> 0`` (default 1.0).
        max_iter: L-BFGS iterations (default 1000, the reference's).
        dtype: of the weights (default float64, as scikit-learn).
        tol: stop when the largest absolute gradient entry of the objective divided by ``C m``
            is below ``tol`` (default ``1e-6``).

    Deviation: scikit-learn stops on the projected gradient of the same scaled objective (its
    ``gtol = tol``) with SciPy's L-BFGS-B (history 10); torch's L-BFGS takes the same steps up
    to the line search, so the two solutions agree to the tolerance, not bit for bit.
    """

    def __init__(
        self,
        n_features: int,
        n_classes: int,
        C: float = 1.0,
        max_iter: int = 1000,
        tol: float = 1e-6,
        *,
        dtype: torch.dtype = torch.float64,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__()
        self.n_features = check_positive_int("n_features", n_features)
        self.n_classes = check_positive_int("n_classes", n_classes, minimum=2)
        self.C = check_positive("C", C)
        self.max_iter = check_positive_int("max_iter", max_iter)
        self.tol = check_positive("tol", tol)
        self.weight = nn.Parameter(torch.empty(n_classes, n_features, dtype=dtype, device=device))
        self.bias = nn.Parameter(torch.empty(n_classes, dtype=dtype, device=device))
        self.n_iter_ = 0
        self.converged_ = False
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Zero weights and intercepts (scikit-learn's starting point)."""
        with torch.no_grad():
            self.weight.zero_()
            self.bias.zero_()

    def _check_x(self, x: Tensor, validate: bool) -> None:
        check_float_tensor("x", x, ndim=2, nonempty=True)
        if x.shape[1] != self.n_features:
            raise ValueError(
                f"x: expected {self.n_features} features (columns), got shape {tuple(x.shape)}"
            )
        check_finite("x", x, validate=validate)

    def forward(self, x: Tensor, *, validate: bool = True) -> Tensor:
        """Logits ``x W^T + b``, ``(B, K)``, for ``x (B, n)``; computed in the weights' dtype,
        returned in ``x``'s."""
        self._check_x(x, validate)
        out = x.to(self.weight.dtype) @ self.weight.T + self.bias
        return out.to(x.dtype)

    def predict(self, x: Tensor) -> Tensor:
        """The most probable class, ``(B,)`` int64."""
        logits: Tensor = self(x)
        return logits.argmax(dim=1)

    def objective(self, x: Tensor, y: Tensor, reduction: Reduction = "sum") -> Tensor:
        """:func:`logistic_objective` of the head's weights on ``x (m, n)``, ``y (m,)``."""
        return logistic_objective(self.weight, self.bias, x, y, self.C, reduction)

    def fit(
        self, x: Tensor, y: Tensor, *, warm_start: bool = False, validate: bool = True
    ) -> LogisticHead:
        """Minimise the objective on ``x (m, n)``, ``y (m,)``; returns self.

        Sets ``n_iter_`` (L-BFGS iterations) and ``converged_`` (stopped before ``max_iter``);
        logs a warning when not converged, as scikit-learn does.

        Raises:
            TypeError/ValueError: as :func:`logistic_objective`; fewer than 2 rows.
        """
        self._check_x(x, validate)
        check_labels("y", y, n=x.shape[0], num_classes=self.n_classes, like=x, validate=validate)
        m = x.shape[0]
        if m < 2:
            raise ValueError(f"x: expected at least 2 training rows, got {m}")
        xd = x.detach().to(torch.float64)
        if not warm_start:
            self.reset_parameters()
        w = self.weight.detach().to(torch.float64).clone().requires_grad_(True)
        b = self.bias.detach().to(torch.float64).clone().requires_grad_(True)
        scale = 1.0 / (self.C * m)
        opt = torch.optim.LBFGS(
            [w, b],
            lr=1.0,
            max_iter=self.max_iter,
            max_eval=self.max_iter * 5 // 4,
            tolerance_grad=self.tol,
            tolerance_change=64 * torch.finfo(torch.float64).eps,
            history_size=10,
            line_search_fn="strong_wolfe",
        )

        def closure() -> Tensor:
            opt.zero_grad()
            loss = _objective_terms(w, b, xd, y, self.C).sum() * scale
            loss.backward()
            return loss

        opt.step(closure)
        state = opt.state[opt._params[0]]
        self.n_iter_ = int(state.get("n_iter", 0))
        self.converged_ = self.n_iter_ < self.max_iter
        if not self.converged_:
            log.warning("LogisticHead: L-BFGS reached max_iter=%d before tol", self.max_iter)
        with torch.no_grad():
            self.weight.copy_(w.detach())
            self.bias.copy_(b.detach())
        return self

    def extra_repr(self) -> str:
        return f"n_features={self.n_features}, n_classes={self.n_classes}, C={self.C}"
