"""Synthetic "distributional access" data: PCA + Gaussian mixture samples of an image set.

The paper edits models with samples from a generative model instead of training images; at our
scale a PCA + full-covariance Gaussian mixture fitted on the training images plays that role
(spec section 6). Training images are touched once, to fit the sampler; never at edit time.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from paperzoo.core.checks import check_float_tensor, check_positive_int

__all__ = ["GaussianMixtureSampler"]


class GaussianMixtureSampler:
    """Fit ``PCA(n_pca)`` then ``GaussianMixture(n_mix, covariance_type="full")`` on images
    ``(N, C, H, W)`` in ``[0, 1]``; :meth:`sample` draws new images, clipped to ``[0, 1]``.

    Args:
        n_pca: principal components kept (capped at ``min(N, C*H*W)``); default 40.
        n_mix: mixture components; default 10.
        reg_covar: added to each covariance diagonal (sklearn's regulariser); default 1e-4.
        seed: seeds PCA and the mixture's k-means initialisation.
    """

    def __init__(
        self, n_pca: int = 40, n_mix: int = 10, *, reg_covar: float = 1e-4, seed: int = 0
    ) -> None:
        self.n_pca = check_positive_int("n_pca", n_pca)
        self.n_mix = check_positive_int("n_mix", n_mix)
        self.reg_covar = float(reg_covar)
        self.seed = int(seed)
        self._shape: tuple[int, ...] = ()
        self._pca: object = None
        self._gmm: object = None

    def fit(self, images: Tensor) -> GaussianMixtureSampler:
        """Fit on ``images`` ``(N, C, H, W)``; returns ``self``.

        Raises:
            TypeError/ValueError: not a float tensor of rank >= 2, or fewer images than mixture
                components.
        """
        from sklearn.decomposition import PCA
        from sklearn.mixture import GaussianMixture

        x = check_float_tensor("images", images, nonempty=True)
        if x.dim() < 2 or x.shape[0] < self.n_mix:
            raise ValueError(
                f"images: expected (N, ...) with N >= n_mix = {self.n_mix}, got {tuple(x.shape)}"
            )
        flat = x.reshape(x.shape[0], -1).double().cpu().numpy()
        k = min(self.n_pca, flat.shape[0] - 1, flat.shape[1])
        pca = PCA(n_components=max(1, k), random_state=self.seed).fit(flat)
        codes = pca.transform(flat)
        gmm = GaussianMixture(
            self.n_mix, covariance_type="full", reg_covar=self.reg_covar, random_state=self.seed
        ).fit(codes)
        self._shape, self._pca, self._gmm = tuple(x.shape[1:]), pca, gmm
        return self

    def sample(self, n: int, *, seed: int = 0) -> Tensor:
        """``n`` synthetic images ``(n, C, H, W)`` float32 in ``[0, 1]``, drawn with ``seed``.

        Raises:
            RuntimeError: before :meth:`fit`.
        """
        check_positive_int("n", n)
        if self._gmm is None:
            raise RuntimeError("sample: call fit(images) first")
        gmm, pca = self._gmm, self._pca
        rng = np.random.default_rng(seed)
        weights = np.asarray(gmm.weights_, dtype=np.float64)  # type: ignore[attr-defined]
        comp = rng.choice(len(weights), size=n, p=weights / weights.sum())
        means = np.asarray(gmm.means_)  # type: ignore[attr-defined]
        chol = np.linalg.cholesky(np.asarray(gmm.covariances_))  # type: ignore[attr-defined]
        z = rng.standard_normal((n, means.shape[1]))
        codes = means[comp] + np.einsum("nij,nj->ni", chol[comp], z)
        flat = pca.inverse_transform(codes)  # type: ignore[attr-defined]
        out = torch.from_numpy(np.clip(flat, 0.0, 1.0).astype(np.float32))
        return out.reshape(n, *self._shape)
