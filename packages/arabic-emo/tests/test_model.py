"""Encoders, the stacked meta-learner and the Bi-LSTM classifier (tiny random encoders only)."""

from __future__ import annotations

import importlib
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from torch import Tensor, nn

from paperzoo.arabic_emo import (
    EncoderSpec,
    StackedBiLSTMClassifier,
    StackedEncoder,
    TinyTextEncoder,
    WhitespaceTokenizer,
    hybrid_loss,
)

VOCAB = [f"w{i}" for i in range(60)]
TEXTS = ["w1 w2 w3", "w4 w5", "w7 w8 w9 w10 w11 w12", "w3", "w50 w51 w52 w53"]


class MeanEmbedder(nn.Module):
    """A user module: embeddings only, returned in an object with ``.last_hidden_state``."""

    def __init__(self, vocab: int, dim: int) -> None:
        super().__init__()
        self.emb = nn.Embedding(vocab, dim)

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None) -> Any:
        return SimpleNamespace(last_hidden_state=self.emb(input_ids))


def _tiny_berts() -> list[nn.Module]:
    transformers = pytest.importorskip("transformers")
    models = []
    for seed, hidden in zip((0, 1, 2), (32, 48, 64), strict=True):
        torch.manual_seed(seed)
        cfg = transformers.BertConfig(
            vocab_size=200,
            hidden_size=hidden,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=2 * hidden,
            max_position_embeddings=32,
        )
        models.append(transformers.BertModel(cfg))
    return models


def _tokens(b: int, length: int, seed: int) -> dict[str, Tensor]:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, 200, (b, length), generator=g)
    mask = torch.ones(b, length, dtype=torch.long)
    mask[1, length // 2 :] = 0  # a shorter, right-padded row
    return {"input_ids": ids * mask, "attention_mask": mask}


@pytest.fixture(scope="module")
def berts() -> list[nn.Module]:
    return _tiny_berts()


def _model(encoders: list[nn.Module], fusion: str, seed: int = 0) -> StackedBiLSTMClassifier:
    specs = [EncoderSpec(m, max_length=16) for m in encoders]
    torch.manual_seed(seed)
    stacked = StackedEncoder(specs, fusion=fusion, d_meta=8)  # type: ignore[arg-type]
    return StackedBiLSTMClassifier(stacked, num_labels=11, lstm_hidden=6)


@pytest.mark.parametrize("fusion", ["token", "pooled"])
def test_three_tiny_berts_and_a_user_module_give_logits_and_embeddings(
    berts: list[nn.Module], fusion: str
) -> None:
    torch.manual_seed(5)
    custom = MeanEmbedder(200, 20)
    model = _model([*berts, custom], fusion)
    assert model.stacked.hidden_sizes == [32, 48, 64, 20]  # config.hidden_size, then a dry run
    toks = [_tokens(4, 10, i) for i in range(3)] + [_tokens(4, 7, 9)]
    out = model(toks)
    assert out.logits.shape == (4, 11) and out.embedding.shape == (4, 12)
    hybrid_loss(
        out.logits, (torch.rand(4, 11) < 0.5).float(), out.embedding, lambda_corr=0.0
    ).total.backward()
    for enc in [*berts, custom]:
        assert all(p.grad is None for p in enc.parameters()), "a frozen encoder got a gradient"
    trained = [p for p in model.head.parameters()] + [p for p in model.stacked.gate.parameters()]
    assert all(p.grad is not None for p in trained)
    model.zero_grad()


@pytest.mark.parametrize("fusion", ["token", "pooled"])
def test_same_seed_gives_the_same_output(berts: list[nn.Module], fusion: str) -> None:
    toks = [_tokens(3, 9, i) for i in range(3)]
    a = _model(berts, fusion, seed=3).eval()(toks)
    b = _model(berts, fusion, seed=3).eval()(toks)
    c = _model(berts, fusion, seed=4).eval()(toks)
    assert torch.equal(a.logits, b.logits) and not torch.equal(a.logits, c.logits)


@pytest.mark.parametrize("fusion", ["token", "pooled"])
def test_cached_embeddings_give_the_live_logits(berts: list[nn.Module], fusion: str) -> None:
    model = _model(berts, fusion).eval()
    toks = [_tokens(7, 12, i) for i in range(3)]
    cache = model.cache_embeddings(toks, batch_size=3)
    rows = torch.tensor([5, 1, 2])
    live = model([{k: v[rows] for k, v in t.items()} for t in toks])
    cached = model.forward_encoded(cache.take(rows))
    torch.testing.assert_close(cached.logits, live.logits, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(cached.embedding, live.embedding, rtol=1e-5, atol=1e-6)


def test_raw_text_through_whitespace_tokenizers_and_frozen_encoders_stay_in_eval() -> None:
    tok = WhitespaceTokenizer(VOCAB)
    specs = [
        EncoderSpec(TinyTextEncoder(tok.vocab_size, 8, 1, 2, 16), tok, max_length=5),
        EncoderSpec(TinyTextEncoder(tok.vocab_size, 12, 1, 2, 16), tok, "mean", max_length=8),
    ]
    model = StackedBiLSTMClassifier(StackedEncoder(specs, d_meta=4), num_labels=3, lstm_hidden=4)
    model.train()
    assert all(not enc.training for enc in model.stacked.encoders)
    out = model(TEXTS)
    assert out.logits.shape == (5, 3)
    model.eval()
    cache = model.cache_embeddings(TEXTS, batch_size=2)
    assert cache.features[0].shape == (5, 5, 8) and cache.features[1].shape == (5, 8, 12)
    torch.testing.assert_close(model.forward_encoded(cache).logits, model(TEXTS).logits)


def test_trainable_encoder_gets_gradients_and_cannot_be_cached() -> None:
    tok = WhitespaceTokenizer(VOCAB)
    enc = TinyTextEncoder(tok.vocab_size, 8, 1, 2, 16)
    model = StackedBiLSTMClassifier(
        StackedEncoder([EncoderSpec(enc, tok, trainable=True)], d_meta=4), num_labels=3
    )
    model(TEXTS).logits.sum().backward()
    assert enc.tokens.weight.grad is not None
    with pytest.raises(ValueError, match="frozen encoders"):
        model.cache_embeddings(TEXTS)


def test_whitespace_tokenizer_ids_mask_and_truncation() -> None:
    tok = WhitespaceTokenizer(["a", "b"])
    out = tok(["a b zz", "b"], max_length=3)
    assert out["input_ids"].tolist() == [[2, 3, 4], [2, 4, 0]]
    assert out["attention_mask"].tolist() == [[1, 1, 1], [1, 1, 0]]


class NoSequence(nn.Module):
    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        return torch.zeros(input_ids.shape[0], 4)


def test_bad_encoder_inputs_get_clear_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="specs: expected at least one EncoderSpec"):
        StackedEncoder([])
    with pytest.raises(ValueError, match="max_length"):
        EncoderSpec(NoSequence(), max_length=0)
    with pytest.raises(ValueError, match="sequence dimension"):
        StackedEncoder([EncoderSpec(NoSequence())])
    model = StackedEncoder([EncoderSpec(TinyTextEncoder(10, 4, 1, 2, 8))], d_meta=2)
    with pytest.raises(ValueError, match=r"specs\[0\].tokenizer: raw text needs a tokenizer"):
        model.encode(["a b"])
    with pytest.raises(ValueError, match="2 token mappings|1 token mappings"):
        model.encode([_tokens(2, 3, 0), _tokens(2, 3, 1)])
    with pytest.raises(ValueError, match="fusion"):
        StackedEncoder([EncoderSpec(NoSequence())], fusion="sum")  # type: ignore[arg-type]

    real = importlib.import_module

    def no_transformers(name: str, *a: Any, **k: Any) -> Any:
        if name == "transformers":
            raise ImportError("No module named 'transformers'")
        return real(name, *a, **k)

    monkeypatch.setattr(importlib, "import_module", no_transformers)
    with pytest.raises(ImportError, match=r"pip install 'paperzoo-arabic-emo\[hf\]'"):
        StackedEncoder([EncoderSpec("aubmindlab/bert-base-arabertv02")])


def test_bad_head_inputs_get_clear_errors() -> None:
    model = StackedBiLSTMClassifier(
        StackedEncoder([EncoderSpec(TinyTextEncoder(10, 4, 1, 2, 8))], d_meta=2), num_labels=3
    )
    with pytest.raises(ValueError, match="expected at least one token per row"):
        model.head(torch.zeros(2, 3, 2), torch.tensor([[1, 1, 0], [0, 0, 0]]).bool())
    with pytest.raises(ValueError, match="mask: expected shape"):
        model.head(torch.zeros(2, 3, 2), torch.ones(2, 4).bool())
