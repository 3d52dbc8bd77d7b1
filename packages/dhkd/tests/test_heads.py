"""The dual-head student: which head answers when, export, and wrapping a torchvision-style model."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from paperzoo.core.models import mlp
from paperzoo.dhkd import DualHeadClassifier, DualHeadOutput, NonLinearHead, add_aux_head


def _student(aux: str = "nonlinear") -> DualHeadClassifier:
    torch.manual_seed(0)
    return DualHeadClassifier(nn.Sequential(mlp([6, 8]), nn.ReLU()), 8, 4, aux)  # type: ignore[arg-type]


def test_training_mode_returns_both_heads_and_eval_mode_the_main_head() -> None:
    model = _student()
    x = torch.randn(5, 6)
    out = model.train()(x)
    assert isinstance(out, DualHeadOutput) and out.main.shape == out.aux.shape == (5, 4)
    assert isinstance(model.aux, NonLinearHead)
    model.eval()
    main = model(x)
    assert isinstance(main, torch.Tensor) and main.shape == (5, 4)
    torch.testing.assert_close(main, model.fc(model.backbone(x)))
    model.return_both = True
    assert isinstance(model(x), DualHeadOutput)
    model.train().return_both = False
    assert isinstance(model(x), torch.Tensor)


def test_export_single_head_drops_the_aux_head_and_keeps_predictions() -> None:
    model = _student().eval()
    single = model.export_single_head()
    x = torch.randn(5, 6)
    torch.testing.assert_close(single(x), model(x), rtol=0, atol=0)
    n_single = sum(p.numel() for p in single.parameters())
    assert n_single == sum(p.numel() for p in model.parameters()) - sum(
        p.numel() for p in model.aux.parameters()
    )


def test_custom_aux_head_module_is_used() -> None:
    head = nn.Linear(8, 4, bias=False)
    model = DualHeadClassifier(nn.Sequential(mlp([6, 8]), nn.ReLU()), 8, 4, head)
    assert model.aux is head


def test_add_aux_head_keeps_the_linear_layer_as_the_main_head() -> None:
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = nn.Sequential(nn.Linear(6, 8), nn.ReLU())
            self.fc = nn.Linear(8, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out: torch.Tensor = self.fc(self.body(x))
            return out

    torch.manual_seed(0)
    net = Net()
    x = torch.randn(4, 6)
    before = net(x).detach()
    dual = add_aux_head(net, "fc", "linear").eval()
    torch.testing.assert_close(dual(x), before, rtol=0, atol=0)
    assert isinstance(net.fc, nn.Identity) and dual.num_classes == 3 and dual.feat_dim == 8
    with pytest.raises(ValueError, match="nn.Linear"):
        add_aux_head(nn.Sequential(nn.Linear(2, 2), nn.ReLU()), "1")
    with pytest.raises(ValueError, match="head_attr"):
        add_aux_head(Net(), "classifier")
    nested = nn.Sequential(nn.Linear(6, 8), nn.Sequential(nn.ReLU(), nn.Linear(8, 2)))
    assert add_aux_head(nested, "1.1", "nonlinear").num_classes == 2


def test_bad_backbone_output_and_bad_input_raise() -> None:
    wrong = DualHeadClassifier(nn.Sequential(mlp([6, 8]), nn.ReLU()), 9, 4)
    with pytest.raises(ValueError, match="backbone"):
        wrong(torch.randn(3, 6))
    model = _student()
    with pytest.raises(ValueError, match="x"):
        model(torch.randn(3, 5))
    with pytest.raises(ValueError, match="aux_head"):
        DualHeadClassifier(nn.Identity(), 8, 4, "mlp")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="feat_dim"):
        DualHeadClassifier(nn.Identity(), 0, 4)
