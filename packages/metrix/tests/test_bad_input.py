"""Spec section 9: each bad input gets a clear error naming the argument."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from paperzoo.metrix import (
    MetrixLoss,
    contrastive_generic,
    mix,
    mix_pairs,
    multi_similarity_generic,
    sample_lambda,
    soft_labels,
    utilization,
)

E = torch.randn(8, 4)
Y = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])


def test_embeddings_not_2d_raise() -> None:
    with pytest.raises(ValueError, match="embeddings"):
        MetrixLoss(multi_similarity_generic())(torch.randn(8), Y)


def test_labels_float_or_wrong_length_raise() -> None:
    with pytest.raises(TypeError, match="labels"):
        MetrixLoss(multi_similarity_generic())(E, Y.float())
    with pytest.raises(ValueError, match="labels"):
        MetrixLoss(multi_similarity_generic())(E, Y[:-1])


def test_soft_labels_outside_unit_interval_or_wrong_shape_raise() -> None:
    loss = contrastive_generic(reduction="none")
    with pytest.raises(ValueError, match="y: expected soft"):
        loss(E, E, torch.full((8, 8), 1.5))
    with pytest.raises(ValueError, match="y: expected shape"):
        loss(E, E, torch.zeros(8, 7))


def test_lambda_outside_unit_interval_and_bad_alpha_raise() -> None:
    with pytest.raises(ValueError, match="lam"):
        mix(E, E, 1.5)
    plan = mix_pairs(Y, kind="anc_neg")
    with pytest.raises(ValueError, match="lam"):
        soft_labels(plan, -0.1, Y)
    with pytest.raises(ValueError, match="alpha"):
        sample_lambda(0.0)
    with pytest.raises(ValueError, match="alpha"):
        MetrixLoss(multi_similarity_generic(), alpha=-1.0)


def test_negative_weight_and_bad_top_k_raise() -> None:
    with pytest.raises(ValueError, match="weight"):
        MetrixLoss(multi_similarity_generic(), weight=-0.1)
    with pytest.raises(ValueError, match="top_k"):
        MetrixLoss(multi_similarity_generic(), top_k=0)
    with pytest.raises(ValueError, match="top_k"):
        mix_pairs(Y, torch.zeros(8, 8), top_k=0)


def test_single_class_batch_warns_and_mixed_loss_is_zero() -> None:
    loss = MetrixLoss(multi_similarity_generic())
    with pytest.warns(UserWarning, match="at least 2 classes"):
        out = loss(E.requires_grad_(), torch.zeros(8, dtype=torch.long))
    assert float(out["mixed"]) == 0.0 and bool(torch.isfinite(out["loss"]))
    out["loss"].backward()


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_nonfinite_embeddings_and_images_raise(value: float) -> None:
    bad = E.clone()
    bad[0, 0] = value
    with pytest.raises(ValueError, match="embeddings"):
        MetrixLoss(multi_similarity_generic())(bad, Y)
    with pytest.raises(ValueError, match="images"):
        MetrixLoss(multi_similarity_generic()).step_input(nn.Identity(), bad, Y)


def test_mixing_tensors_of_different_shape_or_dtype_raise() -> None:
    with pytest.raises(ValueError, match="x_j"):
        mix(E, E[:4], 0.5)
    with pytest.raises(TypeError, match="x_j"):
        mix(E, E.double(), 0.5)


def test_feature_step_head_changing_batch_size_raises() -> None:
    loss = MetrixLoss(multi_similarity_generic())
    with pytest.raises(ValueError, match="head_fn"):
        loss.step_feature(nn.Identity(), lambda f: f[:-1], E, Y)


def test_utilization_dimension_mismatch_or_empty_raise() -> None:
    with pytest.raises(ValueError, match="train_emb"):
        utilization(E, torch.randn(5, 3))
    with pytest.raises(ValueError, match="query_emb"):
        utilization(E[:0], E)
    with pytest.raises(ValueError, match="train_emb"):
        utilization(E, E[:0])


def test_unknown_kind_and_base_raise() -> None:
    with pytest.raises(ValueError, match="kind"):
        MetrixLoss(multi_similarity_generic(), kind="pos_pos")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="base"):
        MetrixLoss(nn.MSELoss())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="base"):
        MetrixLoss(multi_similarity_generic(reduction="none"))
