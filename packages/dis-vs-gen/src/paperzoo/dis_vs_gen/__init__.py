"""Discriminative vs generative linear heads on frozen features (Zheng et al., ICML 2023).

Gaussian naive Bayes as a linear head (:class:`GaussianNBHead`) and L2 logistic regression in
scikit-learn's convention (:class:`LogisticHead`), probes of test error against the training-set
size (:func:`probe_curve`, :func:`samples_to_reach`), the paper's Gaussian-mixture simulation
(:mod:`paperzoo.dis_vs_gen.simulation`) and the assumption diagnostics
(:mod:`paperzoo.dis_vs_gen.diagnostics`).
"""

from paperzoo.dis_vs_gen import diagnostics, simulation
from paperzoo.dis_vs_gen.diagnostics import llr_gap, llr_variance, pooled_variances
from paperzoo.dis_vs_gen.features import extract, pretrain_tiny
from paperzoo.dis_vs_gen.logistic import LogisticHead, logistic_objective
from paperzoo.dis_vs_gen.naive_bayes import (
    GaussianNBHead,
    class_statistics,
    gaussian_nb_fit,
    gaussian_nb_logits,
)
from paperzoo.dis_vs_gen.probe import ProbeCurve, minmax_scale, probe_curve, samples_to_reach
from paperzoo.dis_vs_gen.simulation import (
    bayes_error,
    gaussian_mixture,
    mixture_parameters,
    two_class_error,
)

__all__ = [
    "GaussianNBHead",
    "LogisticHead",
    "ProbeCurve",
    "bayes_error",
    "class_statistics",
    "diagnostics",
    "extract",
    "gaussian_mixture",
    "gaussian_nb_fit",
    "gaussian_nb_logits",
    "llr_gap",
    "llr_variance",
    "logistic_objective",
    "minmax_scale",
    "mixture_parameters",
    "pooled_variances",
    "pretrain_tiny",
    "probe_curve",
    "samples_to_reach",
    "simulation",
    "two_class_error",
]
