"""Per-pixel attributions with captum over (time step × input feature).

What is explained: the softmax **probability** of a target class, as a function of the
*normalised* feature series ``(N, T, F)`` (pixel models) or patches ``(N, T, F, P, P)``
(spatial models: the centre pixel's probability; attributions are summed over the patch when
aggregated). Attributions are therefore in probability units.

Baseline (IG, occlusion): zeros in normalised space, i.e. the **training mean series** of every
feature (normalisation standardises with the training mean/std). An attribution answers "how
much did this date × feature, compared with an average training pixel, move the probability of
the target class". Integrated Gradients is *complete*: per pixel the attributions sum to
``p_target(x) − p_target(baseline)`` up to the integral's approximation error
(:func:`completeness`).

The explained model is a float64 copy by default: completeness then holds to the integral's
error alone, and the copy never shares float32 caches built under ``torch.inference_mode``
by earlier predictions (such cached tensors cannot take part in autograd).

Methods: ``ig`` (Integrated Gradients, Gauss–Legendre, default), ``saliency`` (|∂p/∂x|,
magnitudes only), ``gradientshap`` (expected gradients against a seeded set of Gaussian
reference series in normalised space, i.e. random draws around the training mean with the
training spread), ``occlusion`` (windows of ``occlusion_window`` consecutive time steps of one
feature replaced by the baseline; each cell gets the mean probability drop of the windows
covering it).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

METHODS: tuple[str, ...] = ("ig", "saliency", "gradientshap", "occlusion")
ALIASES = {
    "integrated_gradients": "ig",
    "integratedgradients": "ig",
    "gradient_shap": "gradientshap",
    "shap": "gradientshap",
}
BASELINE = "zeros in normalised space (the training mean of every feature)"


def check_method(method: str) -> str:
    """Canonical method name or ``ValueError``."""
    m = ALIASES.get(str(method).lower(), str(method).lower())
    if m not in METHODS:
        raise ValueError(f"unknown attribution method {method!r}; choose one of {list(METHODS)}")
    return m


@dataclass(frozen=True)
class ExplainConfig:
    """How attributions are computed (defaults suit the 2-core CPU budget of the demo)."""

    method: str = "ig"
    ig_steps: int = 24  # Gauss–Legendre nodes of the IG path integral
    batch: int = 2048  # series per forward/backward pass
    gradientshap_samples: int = 16
    gradientshap_references: int = 16
    occlusion_window: int = 3  # time steps
    seed: int = 0
    float64: bool = True  # explain a double-precision copy of the model (see module notes)
    tolerance: float = 0.01  # completeness tolerance, probability units, per pixel

    def __post_init__(self) -> None:
        object.__setattr__(self, "method", check_method(self.method))
        if self.ig_steps < 2:
            raise ValueError("ig_steps must be ≥ 2")
        if self.batch < 1:
            raise ValueError("batch must be ≥ 1")
        if self.occlusion_window < 1:
            raise ValueError("occlusion_window must be ≥ 1")


class ProbabilityModel(torch.nn.Module):
    """Wrap a model returning logits so that it returns the class probabilities a user sees:
    ``softmax(logits / temperature + log prior ratio)`` (calibration, then the priors)."""

    def __init__(self, module: torch.nn.Module, temperature: float = 1.0,
                 class_shift: np.ndarray | None = None):
        super().__init__()
        self.inner = module
        self.temperature = float(temperature)
        shift = torch.zeros(0) if class_shift is None else torch.as_tensor(class_shift)
        self.register_buffer("class_shift", shift, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.inner(x) / self.temperature
        if self.class_shift.numel():
            z = z + self.class_shift.to(z.dtype)
        return torch.softmax(z, dim=1)


def explained_module(module: Any, *, float64: bool = False, temperature: float = 1.0,
                     class_shift: np.ndarray | None = None) -> ProbabilityModel:
    """An eval-mode probability model (a double-precision copy when ``float64``);
    ``class_shift``: log(prior / training prior) per class."""
    if not isinstance(module, torch.nn.Module):
        raise ValueError(
            f"explanations need a torch model; {type(module).__name__} has no gradients"
        )
    inner = copy.deepcopy(module).double() if float64 else module
    return ProbabilityModel(inner, temperature, class_shift).eval()


def _dtype(cfg: ExplainConfig) -> torch.dtype:
    return torch.float64 if cfg.float64 else torch.float32


def _chunks(n: int, size: int) -> list[slice]:
    return [slice(i, min(n, i + size)) for i in range(0, n, max(1, size))]


def attribute(
    module: Any,
    x: np.ndarray,
    target: np.ndarray,
    config: ExplainConfig | None = None,
    *,
    prepared: ProbabilityModel | None = None,
) -> np.ndarray:
    """Attributions (same shape as ``x``, float32) of ``p_target`` for normalised inputs ``x``.

    ``x``: (N, T, F) or (N, T, F, P, P), already normalised (``LoadedModel.normalise``);
    ``target``: (N,) class indices. Deterministic for a given config (``seed`` for
    gradientshap), independent of how the pixels are batched except for gradientshap.
    """
    cfg = config or ExplainConfig()
    x = np.asarray(x)
    target = np.asarray(target, dtype=np.int64)
    if x.shape[0] != target.shape[0]:
        raise ValueError(f"{x.shape[0]} inputs but {target.shape[0]} targets")
    if x.shape[0] == 0:
        return np.zeros(x.shape, dtype=np.float32)
    f = prepared or explained_module(module, float64=cfg.float64)
    dt = _dtype(cfg)
    xt = torch.from_numpy(np.ascontiguousarray(x)).to(dt)
    tt = torch.from_numpy(target)
    fn: Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor] = {
        "ig": _ig,
        "saliency": _saliency,
        "gradientshap": _gradientshap,
        "occlusion": _occlusion,
    }[cfg.method](f, cfg)
    per_call = {
        "ig": cfg.ig_steps,
        "saliency": 1,
        "gradientshap": cfg.gradientshap_samples,
        "occlusion": max(1, x.shape[1] - cfg.occlusion_window + 1) * x.shape[2],
    }[cfg.method]
    size = max(1, cfg.batch // per_call) if cfg.method in ("gradientshap", "occlusion") else cfg.batch
    out = [fn(xt[s], tt[s], i) for i, s in enumerate(_chunks(len(xt), size))]
    return torch.cat(out).detach().to(torch.float32).numpy()


def _ig(f: ProbabilityModel, cfg: ExplainConfig):
    from captum.attr import IntegratedGradients

    ig = IntegratedGradients(f)

    def run(x: torch.Tensor, t: torch.Tensor, _: int) -> torch.Tensor:
        return ig.attribute(
            x,
            baselines=torch.zeros_like(x),
            target=t,
            n_steps=cfg.ig_steps,
            method="gausslegendre",
            internal_batch_size=cfg.batch,
        )

    return run


def _saliency(f: ProbabilityModel, cfg: ExplainConfig):
    from captum.attr import Saliency

    sal = Saliency(f)

    def run(x: torch.Tensor, t: torch.Tensor, _: int) -> torch.Tensor:
        return sal.attribute(x.clone().requires_grad_(True), target=t, abs=True)

    return run


def reference_series(shape: tuple[int, ...], n: int, seed: int, dtype: torch.dtype) -> torch.Tensor:
    """GradientShap references: ``n`` seeded N(0, 1) draws in normalised space."""
    gen = torch.Generator().manual_seed(int(seed))
    return torch.randn((n, *shape), generator=gen, dtype=torch.float64).to(dtype)


def _gradientshap(f: ProbabilityModel, cfg: ExplainConfig):
    from captum.attr import GradientShap

    gs = GradientShap(f)

    def run(x: torch.Tensor, t: torch.Tensor, i: int) -> torch.Tensor:
        refs = reference_series(tuple(x.shape[1:]), cfg.gradientshap_references, cfg.seed, x.dtype)
        state = np.random.get_state()  # noqa: NPY002  (captum draws its path points with numpy's global RNG)
        try:
            np.random.seed((cfg.seed * 100_003 + i) % 2**32)  # noqa: NPY002
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(cfg.seed * 100_003 + i)
                return gs.attribute(
                    x, baselines=refs, target=t, n_samples=cfg.gradientshap_samples, stdevs=0.0
                )
        finally:
            np.random.set_state(state)  # noqa: NPY002

    return run


def _occlusion(f: ProbabilityModel, cfg: ExplainConfig):
    from captum.attr import Occlusion

    occ = Occlusion(f)

    def run(x: torch.Tensor, t: torch.Tensor, _: int) -> torch.Tensor:
        w = min(cfg.occlusion_window, x.shape[1])
        window = (w, 1, *x.shape[3:])
        strides = (1, 1, *x.shape[3:])
        per_eval = max(1, cfg.batch // max(1, len(x)))
        return occ.attribute(
            x,
            sliding_window_shapes=window,
            strides=strides,
            baselines=0.0,
            target=t,
            perturbations_per_eval=per_eval,
        )

    return run


@torch.no_grad()
def probabilities(
    f: ProbabilityModel, x: np.ndarray, config: ExplainConfig | None = None
) -> np.ndarray:
    """Class probabilities (N, C) of normalised inputs through the explained model."""
    cfg = config or ExplainConfig()
    xt = torch.from_numpy(np.ascontiguousarray(x)).to(_dtype(cfg))
    out = [f(xt[s]) for s in _chunks(len(xt), cfg.batch)]
    return torch.cat(out).double().numpy() if out else np.zeros((0, 0))


def baseline_probabilities(
    f: ProbabilityModel, input_shape: tuple[int, ...], config: ExplainConfig | None = None
) -> np.ndarray:
    """Class probabilities (C,) of the baseline (zeros in normalised space)."""
    return probabilities(f, np.zeros((1, *input_shape)), config)[0]


def completeness(
    f: ProbabilityModel,
    x: np.ndarray,
    target: np.ndarray,
    attributions: np.ndarray,
    config: ExplainConfig | None = None,
) -> np.ndarray:
    """Per pixel: Σ attributions − (p_target(x) − p_target(baseline)) (IG's completeness gap)."""
    cfg = config or ExplainConfig()
    if len(x) == 0:
        return np.zeros(0)
    idx = np.arange(len(x))
    target = np.asarray(target, dtype=np.int64)
    p = probabilities(f, x, cfg)[idx, target]
    pb = baseline_probabilities(f, tuple(x.shape[1:]), cfg)[target]
    total = np.asarray(attributions, dtype=np.float64).reshape(len(x), -1).sum(axis=1)
    return total - (p - pb)
