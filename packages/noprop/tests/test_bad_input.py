"""Spec section 9: every bad input gets a clear ValueError/TypeError naming what is wrong."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from paperzoo.noprop import (
    CosineSchedule,
    DiscreteSchedule,
    DTDenoiseLoss,
    LabelEmbedding,
    LearnableSchedule,
    MLPDenoiseBlock,
    NoPropCT,
    NoPropDT,
    NoPropFM,
    backprop_chain_loss,
    dt_denoise_loss,
    kl_to_standard_normal,
    posterior_coeffs,
    train_blocks_vmapped,
)

K = 3


def _dt(T: int = 3, **kw: object) -> NoPropDT:
    torch.manual_seed(0)
    return NoPropDT(lambda: MLPDenoiseBlock(4, K, K, hidden=8), K, T=T, **kw)  # type: ignore[arg-type]


def _ct() -> NoPropCT:
    torch.manual_seed(0)
    return NoPropCT(MLPDenoiseBlock(4, K, K, hidden=8, time_dim=8), K)


def _fm() -> NoPropFM:
    torch.manual_seed(0)
    return NoPropFM(MLPDenoiseBlock(4, K, K, hidden=8, time_dim=8), K)


X, Y = torch.randn(5, 4), torch.tensor([0, 1, 2, 0, 1])


@pytest.mark.parametrize("make", [_dt, _ct, _fm], ids=["dt", "ct", "fm"])
def test_labels_out_of_range_raise_value_error(make: object) -> None:
    model = make()  # type: ignore[operator]
    loss = (lambda x, y: model.block_loss(1, x, y)) if isinstance(model, NoPropDT) else model.loss
    with pytest.raises(ValueError, match=r"y: expected labels in \[0, 3\)"):
        loss(X, torch.tensor([0, 1, 3, 0, 1]))
    with pytest.raises(ValueError, match=r"y: expected labels in"):
        loss(X, torch.tensor([0, -1, 2, 0, 1]))


@pytest.mark.parametrize("make", [_dt, _ct, _fm], ids=["dt", "ct", "fm"])
def test_float_labels_raise_type_error(make: object) -> None:
    model = make()  # type: ignore[operator]
    loss = (lambda x, y: model.block_loss(1, x, y)) if isinstance(model, NoPropDT) else model.loss
    with pytest.raises(TypeError, match="y: expected an integer dtype"):
        loss(X, Y.float())


@pytest.mark.parametrize("make", [_dt, _ct, _fm], ids=["dt", "ct", "fm"])
def test_batch_size_mismatch_raises(make: object) -> None:
    model = make()  # type: ignore[operator]
    loss = (lambda x, y: model.block_loss(1, x, y)) if isinstance(model, NoPropDT) else model.loss
    with pytest.raises(ValueError, match=r"y: expected 5 labels \(one per row\), got 4"):
        loss(X, Y[:4])


@pytest.mark.parametrize("make", [_dt, _ct, _fm], ids=["dt", "ct", "fm"])
def test_empty_batch_raises(make: object) -> None:
    model = make()  # type: ignore[operator]
    loss = (lambda x, y: model.block_loss(1, x, y)) if isinstance(model, NoPropDT) else model.loss
    with pytest.raises(ValueError, match="empty batch"):
        loss(X[:0], Y[:0])
    with pytest.raises(ValueError, match="empty batch"):
        model.predict_logits(X[:0])


def test_num_blocks_below_one_raises() -> None:
    with pytest.raises(ValueError, match="T: expected an integer >= 1, got 0"):
        _dt(T=0)


@pytest.mark.parametrize("t", [0, 4, -1])
def test_dt_step_outside_one_to_num_blocks_raises(t: int) -> None:
    with pytest.raises(ValueError, match=r"t must lie in 1..T = 1..3"):
        _dt().block_loss(t, X, Y)


def test_dt_step_of_wrong_type_raises() -> None:
    with pytest.raises(TypeError, match="t must be an int"):
        _dt().block_loss(1.0, X, Y)  # type: ignore[arg-type]


@pytest.mark.parametrize("make", [_ct, _fm], ids=["ct", "fm"])
def test_continuous_time_outside_unit_interval_raises(make: object) -> None:
    model = make()  # type: ignore[operator]
    with pytest.raises(ValueError, match=r"t must lie in \[0, 1\]"):
        model.loss(X, Y, t=torch.tensor([0.1, 0.2, 1.5, 0.3, 0.4]))
    with pytest.raises(ValueError, match=r"t must lie in \[0, 1\]"):
        LearnableSchedule().alpha_bar(torch.tensor([-0.1]))


@pytest.mark.parametrize(
    ("abar", "match"),
    [
        ([0.1, 0.5, 0.4], "strictly increasing"),
        ([0.1, 0.1, 0.4], "strictly increasing"),
        ([0.0, 0.5, 0.9], r"strictly inside \(0, 1\)"),
        ([0.1, 0.5, 1.0], r"strictly inside \(0, 1\)"),
        ([0.5], r"shape \(T \+ 1,\)"),
    ],
)
def test_bad_schedule_raises(abar: list[float], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        DiscreteSchedule(torch.tensor(abar))


def test_schedule_with_wrong_number_of_steps_raises() -> None:
    with pytest.raises(ValueError, match="schedule has 2 steps but T=3"):
        _dt(T=3, schedule=DiscreteSchedule(torch.tensor([0.1, 0.5, 0.9])))


def test_learnable_schedule_with_inverted_gamma_range_raises() -> None:
    with pytest.raises(ValueError, match="gamma_max must exceed gamma_min"):
        LearnableSchedule(gamma_min=3.0, gamma_max=-3.0)


def test_embedding_dim_mismatch_with_blocks_raises() -> None:
    emb = LabelEmbedding(K, dim=5, kind="learned")
    with pytest.raises(ValueError, match=r"block t=1.embed_dim=3 does not match .* dim 5"):
        NoPropDT(lambda: MLPDenoiseBlock(4, K, K, hidden=8), K, T=2, embedding=emb)
    with pytest.raises(ValueError, match="embed_dim=3 does not match"):
        NoPropCT(MLPDenoiseBlock(4, K, K, hidden=8, time_dim=8), K, embedding=emb)


def test_block_output_width_mismatch_raises() -> None:
    emb = LabelEmbedding(K, dim=5, kind="learned")
    with pytest.raises(ValueError, match=r"block outputs 3 values but head='linear' needs 5"):
        NoPropFM(MLPDenoiseBlock(4, 5, K, hidden=8, time_dim=8), K, embedding=emb)


def test_block_without_dim_attributes_is_checked_at_run_time() -> None:
    class Bare(nn.Module):
        def forward(self, x: Tensor, z: Tensor) -> Tensor:
            return torch.zeros(x.shape[0], 7)

    model = NoPropDT(Bare, K, T=2)
    with pytest.raises(ValueError, match=r"block t=2 must output \(B, num_classes=3\) logits"):
        model.block_loss(2, X, Y)


@pytest.mark.parametrize("shape", [(K, 4, 1, 2), (K + 1, 4), (K,)])
def test_prototype_shape_other_than_classes_by_dim_raises(shape: tuple[int, ...]) -> None:
    protos = torch.randn(*shape)
    if len(shape) == 4:
        # (K, 4, 1, 2) flattens to (K, 8): wrong only against an explicit dim
        with pytest.raises(ValueError, match=r"prototypes must have shape \(3, 5\)"):
            LabelEmbedding(K, dim=5, kind="prototype", prototypes=protos)
        return
    with pytest.raises(ValueError, match="prototypes must have shape"):
        LabelEmbedding(K, kind="prototype", prototypes=protos)


def test_missing_prototypes_raise() -> None:
    with pytest.raises(ValueError, match="needs prototypes"):
        LabelEmbedding(K, kind="prototype")


def test_nan_block_output_names_the_block_and_t() -> None:
    model = _dt()
    with torch.no_grad():
        model.blocks[1].fuse[-1].bias.fill_(float("nan"))  # type: ignore[index,union-attr]
    with pytest.raises(ValueError, match=r"non-finite .* output of block t=2 \(MLPDenoiseBlock\)"):
        model.block_loss(2, X, Y)
    with pytest.raises(ValueError, match=r"non-finite .* output of block t=2"):
        model.predict_logits(X)
    model.block_loss(1, X, Y)  # other blocks are unaffected


def test_nan_input_raises() -> None:
    x = X.clone()
    x[0, 0] = float("nan")
    with pytest.raises(ValueError, match="must be finite"):
        _dt().block_loss(1, x, Y)


@pytest.mark.parametrize("eta", [0.0, -0.1])
def test_non_positive_eta_raises(eta: float) -> None:
    with pytest.raises(ValueError, match=f"eta: expected a finite value > 0, got {eta}"):
        _dt(eta=eta)
    with pytest.raises(ValueError, match="eta: expected a finite value > 0"):
        NoPropCT(MLPDenoiseBlock(4, K, K, hidden=8, time_dim=8), K, eta=eta)
    with pytest.raises(ValueError, match="eta: expected a finite value > 0"):
        dt_denoise_loss(torch.zeros(2, K), torch.zeros(2, K), 2.0, 1.0, T=3, eta=eta)


@pytest.mark.parametrize("make", [_ct, _fm], ids=["ct", "fm"])
def test_inference_steps_below_one_raise(make: object) -> None:
    with pytest.raises(ValueError, match="steps: expected an integer >= 1, got 0"):
        make().predict_logits(X, steps=0)  # type: ignore[operator]


def test_wrong_number_of_optimisers_raises() -> None:
    model = _dt(T=3)
    opts = [torch.optim.SGD(model.parameters(), lr=0.1) for _ in range(2)]
    with pytest.raises(ValueError, match="one optimiser or T=3, got 2"):
        model.train_step(X, Y, opts, t=1)


def test_block_rejects_wrong_z_width_and_missing_time() -> None:
    blk = MLPDenoiseBlock(4, K, K, hidden=8)
    with pytest.raises(ValueError, match=r"z must have shape \(B, embed_dim=3\)"):
        blk(X, torch.zeros(5, 2))
    tblk = MLPDenoiseBlock(4, K, K, hidden=8, time_dim=8)
    with pytest.raises(ValueError, match="time-conditioned"):
        tblk(X, torch.zeros(5, K))


# -- review (session 3): constructor arguments, schedules, functional pieces ------------------


def test_block_factory_returning_one_shared_block_raises() -> None:
    shared = MLPDenoiseBlock(4, K, K, hidden=8)
    with pytest.raises(ValueError, match=r"blocks t=1 and t=2 share parameters"):
        NoPropDT(lambda: shared, K, T=3)
    inner = nn.Linear(4, K)

    class Wrapper(nn.Module):  # a new module every call, but around one shared layer
        def __init__(self) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, x: Tensor, z: Tensor) -> Tensor:
            out: Tensor = self.inner(x)
            return out

    with pytest.raises(ValueError, match=r"share parameters"):
        NoPropDT(Wrapper, K, T=2)


def test_block_module_given_instead_of_a_factory_raises() -> None:
    blk = MLPDenoiseBlock(4, K, K, hidden=8)
    with pytest.raises(TypeError, match=r"block_factory must be a callable returning a new block"):
        NoPropDT(blk, K, T=2)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"block_factory\(\) \(block t=1\) must be an nn.Module"):
        NoPropDT(lambda: "not a block", K, T=2)  # type: ignore[arg-type,return-value]


@pytest.mark.parametrize("cls", [NoPropCT, NoPropFM], ids=["ct", "fm"])
def test_continuous_models_reject_a_factory_instead_of_a_block(cls: type[nn.Module]) -> None:
    with pytest.raises(TypeError, match="block must be an nn.Module"):
        cls(lambda: MLPDenoiseBlock(4, K, K, hidden=8, time_dim=8), K)


@pytest.mark.parametrize("T", [2.0, 2.5, True])
def test_non_integer_number_of_blocks_raises(T: object) -> None:
    with pytest.raises(TypeError, match="T: expected an integer >= 1"):
        NoPropDT(lambda: MLPDenoiseBlock(4, K, K, hidden=8), K, T=T)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="T: expected an integer >= 1"):
        CosineSchedule(T)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="T: expected an integer >= 1"):
        dt_denoise_loss(torch.zeros(2, K), torch.zeros(2, K), 2.0, 1.0, T=T, eta=0.1)  # type: ignore[arg-type]


def test_cosine_schedule_with_too_many_steps_names_t_and_the_clip() -> None:
    assert CosineSchedule(155).T == 155  # the largest T the default clip keeps increasing
    with pytest.raises(ValueError, match=r"T=156 is too large for the cosine schedule clipped"):
        CosineSchedule(156)
    with pytest.raises(ValueError, match=r"T=1000 is too large"):
        NoPropDT(lambda: MLPDenoiseBlock(4, K, K, hidden=8), K, T=1000)


@pytest.mark.parametrize("eta", [float("inf"), float("nan")])
def test_non_finite_eta_raises(eta: float) -> None:
    with pytest.raises(ValueError, match="eta: expected a finite value > 0"):
        _dt(eta=eta)
    with pytest.raises(ValueError, match="eta: expected a finite value > 0"):
        NoPropCT(MLPDenoiseBlock(4, K, K, hidden=8, time_dim=8), K, eta=eta)
    with pytest.raises(ValueError, match="eta: expected a finite value > 0"):
        dt_denoise_loss(torch.zeros(2, K), torch.zeros(2, K), 2.0, 1.0, T=3, eta=eta)
    with pytest.raises(ValueError, match="eta: expected a finite value > 0"):
        DTDenoiseLoss(T=3, eta=eta)


@pytest.mark.parametrize(
    ("kw", "err", "match"),
    [
        ({"gamma_max": float("inf")}, ValueError, "gamma_min and gamma_max must be finite"),
        ({"gamma_min": float("-inf")}, ValueError, "gamma_min and gamma_max must be finite"),
        ({"gamma_min": float("nan")}, ValueError, "gamma_min and gamma_max must be finite"),
        ({"hidden": 2.5}, TypeError, "hidden: expected an integer >= 1"),
        ({"hidden": 0}, ValueError, "hidden: expected an integer >= 1, got 0"),
    ],
)
def test_learnable_schedule_bad_arguments_raise(
    kw: dict[str, float], err: type[Exception], match: str
) -> None:
    with pytest.raises(err, match=match):
        LearnableSchedule(**kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(("s", "t"), [(0.8, 0.2), (0.5, 0.5)])
def test_learnable_schedule_coeffs_need_s_before_t(s: float, t: float) -> None:
    sched = LearnableSchedule()
    with pytest.raises(ValueError, match="coeffs needs s < t"):
        sched.coeffs(s, t)
    with pytest.raises(ValueError, match="coeffs needs s < t"):
        sched.coeffs(torch.tensor([0.1, s]), torch.tensor([0.2, t]))
    with pytest.raises(ValueError, match=r"t must lie in \[0, 1\]"):
        sched.coeffs(0.1, 1.5)


@pytest.mark.parametrize(
    ("prev", "cur"), [(0.9, 0.1), (0.5, 0.5), (0.0, 0.5), (0.5, 1.5), (float("nan"), 0.5)]
)
def test_posterior_coeffs_reject_a_non_increasing_or_out_of_range_pair(
    prev: float, cur: float
) -> None:
    with pytest.raises(ValueError, match="posterior_coeffs needs 0 < alpha_bar_prev < alpha_bar_t"):
        posterior_coeffs(prev, cur)
    with pytest.raises(ValueError, match="posterior_coeffs needs"):
        posterior_coeffs(torch.tensor([0.1, prev]), torch.tensor([0.2, cur]))


def test_kl_to_standard_normal_rejects_bad_variance_and_empty_or_nan_mean() -> None:
    mean = torch.ones(2, K)
    for var in (0.0, -1.0, float("nan"), float("inf"), torch.tensor([0.5, 0.0])):
        with pytest.raises(ValueError, match="finite var > 0"):
            kl_to_standard_normal(mean, var)
    with pytest.raises(ValueError, match=r"var must be a scalar or of shape \(2,\), got \(2, 1\)"):
        kl_to_standard_normal(mean, torch.ones(2, 1))  # would broadcast to (2, 2)
    with pytest.raises(ValueError, match="empty batch"):
        kl_to_standard_normal(mean[:0], 0.5)
    with pytest.raises(ValueError, match="finite mean"):
        kl_to_standard_normal(mean * float("nan"), 0.5)


@pytest.mark.parametrize(("snr_t", "snr_prev"), [(float("nan"), 1.0), (float("inf"), 1.0)])
def test_dt_denoise_loss_rejects_non_finite_snr(snr_t: float, snr_prev: float) -> None:
    with pytest.raises(ValueError, match="SNR.* must be finite and > 0"):
        dt_denoise_loss(torch.zeros(2, K), torch.ones(2, K), snr_t, snr_prev, T=3, eta=0.1)


@pytest.mark.parametrize("make", [_ct, _fm], ids=["ct", "fm"])
def test_continuous_time_nan_or_integer_times_name_t(make: object) -> None:
    model = make()  # type: ignore[operator]
    with pytest.raises(ValueError, match=r"t must lie in \[0, 1\] \(NaN/Inf"):
        model.loss(X, Y, t=torch.tensor([0.1, float("nan"), 0.2, 0.3, 0.4]))
    with pytest.raises(TypeError, match="t must be a floating Tensor"):
        model.loss(X, Y, t=torch.tensor([0, 1, 0, 1, 0]))
    with pytest.raises(TypeError, match="t must be a floating Tensor"):
        model.loss(X, Y, t=[0.5] * 5)
    with pytest.raises(ValueError, match=r"t must have shape \(5,\)"):
        model.loss(X, Y, t=torch.full((5, 1), 0.5))


@pytest.mark.parametrize("make", [_ct, _fm], ids=["ct", "fm"])
@pytest.mark.parametrize("steps", [2.5, 2.0, True])
def test_non_integer_inference_steps_raise(make: object, steps: object) -> None:
    with pytest.raises(TypeError, match="steps: expected an integer >= 1"):
        make().predict_logits(X, steps=steps)  # type: ignore[operator]


def test_dt_step_accepts_numpy_and_zero_dim_integer_tensors() -> None:
    np = pytest.importorskip("numpy")
    model = _dt()
    ref = model.block_loss(2, X, Y, generator=torch.Generator().manual_seed(0))
    for t in (np.int64(2), torch.tensor(2)):
        got = model.block_loss(t, X, Y, generator=torch.Generator().manual_seed(0))
        torch.testing.assert_close(got, ref, rtol=0, atol=0)
    with pytest.raises(TypeError, match="t must be an int"):
        model.block_loss(torch.tensor(True), X, Y)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"t must lie in 1..T = 1..3, got 4"):
        model.train_step(X, Y, torch.optim.SGD(model.parameters(), lr=0.1), t=torch.tensor(4))  # type: ignore[arg-type]


@pytest.mark.parametrize("make", [_dt, _ct, _fm], ids=["dt", "ct", "fm"])
def test_inputs_of_another_dtype_or_device_than_the_model_are_named(make: object) -> None:
    model = make()  # type: ignore[operator]
    loss = (lambda x, y: model.block_loss(1, x, y)) if isinstance(model, NoPropDT) else model.loss
    with pytest.raises(TypeError, match=r"x has dtype torch.float64 but the model's parameters"):
        loss(X.double(), Y)
    with pytest.raises(TypeError, match=r"x has dtype torch.float64 but the model's parameters"):
        model.predict_logits(X.double())
    with pytest.raises(
        ValueError, match=r"x is on device meta but the model.s parameters are on cpu"
    ):
        model.predict_logits(X.to("meta"))
    with pytest.raises(
        ValueError, match=r"x is on device meta but the model.s parameters are on cpu"
    ):
        loss(X.to("meta"), Y.to("meta"))
    with pytest.raises(ValueError, match=r"y: expected x's device cpu, got meta"):
        loss(X, Y.to("meta"))
    with torch.autocast("cpu", dtype=torch.bfloat16):  # autocast casts the inputs itself
        assert torch.isfinite(loss(X.bfloat16(), Y)).all()
    if not isinstance(model, NoPropDT):
        with pytest.raises(ValueError, match=r"t is on meta but x is on cpu"):
            model.loss(X, Y, t=torch.full((5,), 0.5, device="meta"))


def test_vmapped_step_and_backprop_chain_check_their_inputs() -> None:
    model = _dt()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match=r"y: expected labels in \[0, 3\)"):
        train_blocks_vmapped(model, X, torch.tensor([0, 1, 3, 0, 1]), opt)
    with pytest.raises(TypeError, match=r"x has dtype torch.float64"):
        train_blocks_vmapped(model, X.double(), Y, opt)
    with pytest.raises(ValueError, match="y: expected 5 labels"):
        backprop_chain_loss(model, X, Y[:3])


def test_given_noise_of_the_wrong_shape_dtype_or_type_is_named() -> None:
    x, y = torch.randn(5, 4), torch.randint(0, K, (5,))
    dt, ct, fm = _dt(), _ct(), _fm()
    with pytest.raises(ValueError, match=r"noise: expected shape \(5, 2, 3\)"):
        dt.block_loss(1, x, y, noise=torch.randn(5, 3))
    with pytest.raises(ValueError, match=r"noise: expected shape \(5, 4, 3\)"):
        dt.predict_logits(x, noise=torch.randn(5, 3, 3))
    with pytest.raises(ValueError, match=r"noise: expected shape \(5, 2, 3\)"):
        ct.loss(x, y, noise=torch.randn(4, 2, 3))
    with pytest.raises(ValueError, match=r"noise: expected shape \(5, 3\)"):
        fm.loss(x, y, noise=torch.randn(5, 2, 3))
    with pytest.raises(TypeError, match="noise has dtype torch.float64"):
        backprop_chain_loss(dt, x, y, noise=torch.randn(5, 4, 3, dtype=torch.float64))
    with pytest.raises(TypeError, match="noise: expected a floating-point tensor"):
        fm.loss(x, y, noise=torch.zeros(5, 3, dtype=torch.long))
