"""paperzoo.core: devices, offline data, samplers, the training loop, evaluation, experiments,
reports, benchmarks, the CLI and the loss/layer contract suite shared by every paperzoo package.

Submodules are imported explicitly (``from paperzoo.core.training import fit``); this module
re-exports the most used names.
"""

from __future__ import annotations

from paperzoo.core.checks import UserError
from paperzoo.core.data import Split, available_datasets, load_dataset, make_loader
from paperzoo.core.devices import autocast, deterministic, resolve_device, seed_everything
from paperzoo.core.evaluation import accuracy, evaluate, predict
from paperzoo.core.experiments import Check, Curve, Experiment, Result, Row, RunContext
from paperzoo.core.samplers import EpisodicBatchSampler, MPerClassSampler
from paperzoo.core.training import Callback, FitResult, fit, load_checkpoint, save_checkpoint

__version__ = "0.1.0"

__all__ = [
    "Callback",
    "Check",
    "Curve",
    "EpisodicBatchSampler",
    "Experiment",
    "FitResult",
    "MPerClassSampler",
    "Result",
    "Row",
    "RunContext",
    "Split",
    "UserError",
    "accuracy",
    "autocast",
    "available_datasets",
    "deterministic",
    "evaluate",
    "fit",
    "load_checkpoint",
    "load_dataset",
    "make_loader",
    "predict",
    "resolve_device",
    "save_checkpoint",
    "seed_everything",
]
