r"""The perturbed network prediction and a small MLP factory.

The paper adds a small random perturbation to the network prediction so that the online losses
satisfy quadratic growth with a unique minimiser. The form implemented here is

.. math:: \tilde f(\theta; x) = f(\theta; x) + \langle \epsilon_t, \theta - \theta_0 \rangle,
          \qquad \epsilon_t \sim \mathcal N(0, (c_p^2 / p) I_p)

resampled every round (``p`` = number of trainable parameters, :math:`\theta_0` the parameters at
initialisation). Its gradient is :math:`\nabla f + \epsilon_t`, and for the squared loss
:math:`\mathbb E_\epsilon (y - \tilde f)^2 = (y - f)^2 + (c_p^2/p)\lVert\theta - \theta_0\rVert^2`:
a ridge penalty towards the initialisation in expectation. ``c_p = 0`` recovers the plain network.

Deviation / unverified: the paper's body (Sec. 3) could not be retrieved and no official code
exists, so this exact form (linear in :math:`\theta - \theta_0`, isotropic Gaussian with variance
:math:`c_p^2/p`) is the spec's reconstruction from the abstract's claim (a small random perturbation
of the prediction that creates QG with a unique minimiser); the scaling constant of the paper may
differ.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from torch import Tensor, nn

__all__ = ["PerturbedModel", "input_dim_of", "mlp"]

_ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "softplus": nn.Softplus,
    "gelu": nn.GELU,
}


def mlp(
    input_dim: int, width: int = 100, depth: int = 1, activation: str = "relu"
) -> nn.Sequential:
    """The practical network of this line of work: ``depth`` hidden layers of ``width`` units.

    Maps ``(N, input_dim) -> (N, 1)``. Defaults (1 hidden layer, 100 ReLU units, PyTorch's default
    initialisation) follow the NeuralUCB/NeuralTS/EE-Net baselines; ``activation="softplus"`` or
    ``"gelu"`` gives the smooth activations of the theory.
    """
    if input_dim < 1 or width < 1 or depth < 0:
        raise ValueError(
            f"need input_dim >= 1, width >= 1, depth >= 0, got {input_dim}, {width}, {depth}"
        )
    if activation not in _ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)}, got {activation!r}")
    layers: list[nn.Module] = []
    last = input_dim
    for _ in range(depth):
        layers += [nn.Linear(last, width), _ACTIVATIONS[activation]()]
        last = width
    layers.append(nn.Linear(last, 1))
    return nn.Sequential(*layers)


def input_dim_of(model: nn.Module) -> int | None:
    """The input width of ``model`` when its first parametrised layer is an ``nn.Linear``."""
    for module in model.modules():
        if isinstance(module, nn.Linear):
            return int(module.in_features)
        if isinstance(module, PerturbedModel):
            continue
        if any(True for _ in module.parameters(recurse=False)):
            return None
    return None


class PerturbedModel(nn.Module):
    r"""Wraps ``model`` so that ``forward(x) = model(x) + <eps, theta - theta_0>``.

    Args:
        model: any ``nn.Module`` mapping ``(N, D)`` to ``(N,)`` or ``(N, 1)``.
        scale: the perturbation size :math:`c_p \ge 0` (default ``1e-3``; the spec's grid is
            ``{0, 1e-3, 1e-2}``, the paper's value was not retrieved). ``0`` gives the plain model.
        generator: the random stream for :math:`\epsilon_t`; a fresh seeded-by-torch one if ``None``.
        validate: check the input shape and finiteness in ``forward``.

    :math:`\theta_0` is the wrapped model's parameters at construction (or at the last
    :meth:`reset_parameters` / :meth:`reset_theta0`); :math:`\epsilon` is zero until the first
    :meth:`resample`, so the perturbation is exactly zero at initialisation either way. Both are
    buffers, so ``state_dict`` carries them.
    """

    def __init__(
        self,
        model: nn.Module,
        scale: float = 1e-3,
        generator: torch.Generator | None = None,
        *,
        validate: bool = True,
    ) -> None:
        super().__init__()
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
        scale = float(scale)
        if not math.isfinite(scale) or scale < 0:
            raise ValueError(f"perturb_scale (scale) must be finite and >= 0, got {scale}")
        self.model = model
        self.scale = scale
        self.validate = validate
        self.input_dim = input_dim_of(model)
        params = self._params()
        if not params:
            raise ValueError("model has no trainable parameters to perturb")
        self.num_params = sum(p.numel() for p in params)
        self._num_tensors = len(params)
        for i, p in enumerate(params):
            self.register_buffer(f"theta0_{i}", p.detach().clone())
            self.register_buffer(f"eps_{i}", torch.zeros_like(p))
        self.generator = generator if generator is not None else torch.Generator(device="cpu")
        if generator is None:
            self.generator.manual_seed(int(torch.initial_seed()) % (2**63))

    def _params(self) -> list[nn.Parameter]:
        return [p for p in self.model.parameters() if p.requires_grad]

    def _buffers_named(self, prefix: str) -> Iterator[Tensor]:
        for i in range(self._num_tensors):
            buf = getattr(self, f"{prefix}_{i}")
            assert isinstance(buf, Tensor)
            yield buf

    @property
    def theta0(self) -> list[Tensor]:
        """:math:`\\theta_0`, one tensor per trainable parameter."""
        return list(self._buffers_named("theta0"))

    @property
    def eps(self) -> list[Tensor]:
        """The current :math:`\\epsilon_t`, one tensor per trainable parameter."""
        return list(self._buffers_named("eps"))

    @torch.no_grad()
    def resample(self) -> None:
        r"""Draw a fresh :math:`\epsilon_t \sim \mathcal N(0, (c_p^2/p) I)` (once per round)."""
        if self.scale == 0.0:
            return
        std = self.scale / math.sqrt(self.num_params)
        gen_device = self.generator.device
        for eps in self.eps:
            draw = torch.randn(
                eps.shape, generator=self.generator, device=gen_device, dtype=eps.dtype
            )
            eps.copy_(draw.mul_(std))

    @torch.no_grad()
    def reset_theta0(self) -> None:
        """Take the current parameters as :math:`\\theta_0` and zero :math:`\\epsilon`."""
        for p, t0, eps in zip(self._params(), self.theta0, self.eps, strict=True):
            t0.copy_(p)
            eps.zero_()

    def reset_parameters(self) -> None:
        """Re-initialise the wrapped model (every submodule's ``reset_parameters``), then theta_0."""
        for module in self.model.modules():
            reset = getattr(module, "reset_parameters", None)
            if callable(reset) and module is not self:
                reset()
        self.reset_theta0()

    def perturbation(self) -> Tensor:
        r""":math:`\langle \epsilon, \theta - \theta_0 \rangle` as a 0-d tensor (differentiable)."""
        total: Tensor | None = None
        for p, t0, eps in zip(self._params(), self.theta0, self.eps, strict=True):
            e = eps.reshape(-1)
            # two fused dot products, no (p - t0) temporary of the parameter's size
            term = torch.dot(e, p.reshape(-1)) - torch.dot(e, t0.reshape(-1))
            total = term if total is None else total + term
        assert total is not None
        return total

    def forward(self, x: Tensor) -> Tensor:
        """``(N, D) -> `` the wrapped model's output shape, plus the scalar perturbation."""
        if self.validate:
            if not isinstance(x, Tensor) or not x.is_floating_point():
                raise TypeError("x must be a floating-point tensor")
            if x.dim() != 2 or x.shape[0] == 0:
                raise ValueError(f"x must have shape (N, D) with N >= 1, got {tuple(x.shape)}")
            if self.input_dim is not None and x.shape[1] != self.input_dim:
                raise ValueError(
                    f"x must have D = {self.input_dim} features (the model's input), "
                    f"got shape {tuple(x.shape)}"
                )
            if not bool(torch.isfinite(x).all()):
                raise ValueError("x contains NaN or inf")
        out: Tensor = self.model(x)
        if self.scale == 0.0:
            return out
        return out + self.perturbation()

    def extra_repr(self) -> str:
        return f"scale={self.scale}, num_params={self.num_params}"
