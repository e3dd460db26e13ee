"""Training: field-level validation split, class-balanced loss, early stopping, seeded."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from agrostress.cube import CLASS_NAMES
from agrostress.models import ForestModel, LoadedModel, ModelCard, create_model, load
from agrostress.models.calibration import OODScorer, fit_temperature
from agrostress.models.ffdnn import FFDNN
from agrostress.preprocess import NormStats
from agrostress.training.data import TrainingData, field_split
from agrostress.training.metrics import classification_report


@dataclass
class TrainConfig:
    """Optimisation settings (the model's own settings go in ``model_config``)."""

    epochs: int = 40
    batch_size: int = 512
    lr: float = 3e-3
    weight_decay: float = 1e-4
    patience: int = 8
    val_fraction: float = 0.2
    seed: int = 0
    input_noise: float = 0.05  # Gaussian noise on normalised inputs (augmentation)
    time_shift: int = 2  # random per-sample shift of ±N grid steps (phenology timing jitter)
    #: standard deviation (normalised units) of a per-sample, per-date offset added to the
    #: sample and its reference alike (a scene's radiometry and season, not the field's)
    scene_jitter: float = 0.0
    model_config: dict[str, Any] = field(default_factory=dict)
    threads: int | None = None
    #: warm start: the folder of a checkpoint of the same architecture whose weights and
    #: normalisation the training starts from (a whole-season FFDNN may start a
    #: ``season_mask`` one)
    init: str | None = None


#: samples the normalisation statistics are fitted on (all of them when fewer)
NORM_FIT_SAMPLES = 20_000


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002  (legacy global RNG some libraries still use)
    torch.manual_seed(seed)


def shift_time(x: torch.Tensor, max_shift: int, gen: torch.Generator,
               *also: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
    """Shift every sample along time (axis 1) by a random whole number of steps in
    [-max_shift, max_shift], repeating the edge step (phenology happens earlier or later).
    Tensors in ``also`` (same batch and time axes) get the same shifts."""
    shift = torch.randint(-max_shift, max_shift + 1, (x.shape[0],), generator=gen)
    return apply_shift(shift, x, *also)


def apply_shift(shift: torch.Tensor, x: torch.Tensor,
                *also: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
    """:func:`shift_time` with given per-sample shifts (B,)."""
    b, t = x.shape[0], x.shape[1]
    base = (torch.arange(t)[None, :] - shift[:, None]).clamp(0, t - 1)  # (B, T)

    def apply(a: torch.Tensor) -> torch.Tensor:
        idx = base.view(b, t, *([1] * (a.dim() - 2))).expand_as(a)
        return torch.gather(a, 1, idx)

    return apply(x) if not also else (apply(x), *(apply(a) for a in also))


def scene_offsets(x: torch.Tensor, ref: torch.Tensor, sigma: float,
                  gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Add the same random offset per sample, date and feature to the sample (B, T, F, …) and
    its reference (B, T, F): what the scene shares moves, the deviation from it does not."""
    off = sigma * torch.randn(ref.shape, generator=gen)
    return x + off.view(*off.shape, *([1] * (x.dim() - 3))), ref + off


def _centre(x: np.ndarray) -> np.ndarray:
    """Samples (N, T, F) or patches (N, T, F, P, P) → centre series (N, T, F)."""
    if x.ndim == 5:
        c = x.shape[-1] // 2
        return x[:, :, :, c, c]
    return x


def predict_logits(model: Any, x: np.ndarray, refs: torch.Tensor | None,
                   r: torch.Tensor | None, h: torch.Tensor | None,
                   batch: int = 4096) -> torch.Tensor:
    """Eval-mode logits of normalised samples with their references and horizons (or none)."""
    with torch.inference_mode():
        return torch.cat([
            model(torch.from_numpy(x[j : j + batch]),
                  ref=None if refs is None else refs[r[j : j + batch]],
                  horizon=None if h is None else h[j : j + batch])
            if refs is not None or h is not None else model(torch.from_numpy(x[j : j + batch]))
            for j in range(0, len(x), batch)])


def calibrate(model: Any, xtr: np.ndarray, xva: np.ndarray, yva: np.ndarray,
              refs: torch.Tensor | None, rtr: torch.Tensor | None, rva: torch.Tensor | None,
              n_classes: int, max_samples: int = 20_000, htr: torch.Tensor | None = None,
              hva: torch.Tensor | None = None) -> dict[str, Any]:
    """Temperature on the validation fields, the OOD model (fit on training samples, thresholds
    on validation ones) and the training prior (balanced: the loss is class-weighted)."""
    logits = predict_logits(model, xva, refs, rva, hva).numpy()
    rng = np.random.default_rng(0)
    pick = rng.permutation(len(xtr))[:max_samples]

    def ood_inputs(x: np.ndarray, r: torch.Tensor | None, h: torch.Tensor | None) -> np.ndarray:
        z = _centre(x)
        if r is not None:
            z = z - refs[r].numpy()
        if h is not None:  # steps after the season cut are masked, as at inference
            z = np.where(np.arange(z.shape[1])[None, :, None] < h.numpy()[:, None, None], z, 0.0)
        return z.reshape(len(z), -1)

    scorer = OODScorer.fit(ood_inputs(xtr[pick], None if rtr is None else rtr[pick],
                                      None if htr is None else htr[pick]),
                           ood_inputs(xva, rva, hva))
    return {"temperature": fit_temperature(logits.astype(np.float64), yva),
            "training_prior": {n: 1.0 / n_classes for n in CLASS_NAMES},
            "ood": scorer.to_dict()}


def class_weights(y: np.ndarray, n_classes: int) -> np.ndarray:
    """Inverse-frequency weights, mean 1 over the present classes."""
    counts = np.bincount(y, minlength=n_classes).astype(float)
    w = np.where(counts > 0, counts.sum() / np.maximum(counts, 1) / n_classes, 0.0)
    return w / w[counts > 0].mean()


def train_model(
    name: str,
    data: TrainingData,
    config: TrainConfig | None = None,
    *,
    on_epoch: Callable[[int, dict[str, float]], None] | None = None,
) -> tuple[LoadedModel, dict[str, Any]]:
    """Train ``name`` on ``data``; returns the best model (by validation macro-F1) and history."""
    cfg = config or TrainConfig()
    seed_everything(cfg.seed)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    n_classes = len(CLASS_NAMES)
    tr, va = field_split(data.field_key, data.y, cfg.val_fraction, cfg.seed)
    if len(va) == 0 or len(tr) == 0:
        raise ValueError("need at least two fields per class for a field-level validation split")
    spatial = data.x.ndim == 5
    feat_axis = 2 if spatial else -1
    fit_rows = tr if len(tr) <= NORM_FIT_SAMPLES else np.sort(
        np.random.default_rng(cfg.seed).choice(tr, NORM_FIT_SAMPLES, replace=False))
    init = load(cfg.init) if cfg.init else None
    norm = init.norm if init is not None else NormStats.fit(
        np.moveaxis(data.x[fit_rows], feat_axis, -1).reshape(-1, data.x.shape[feat_axis]),
        list(data.spec.names))
    if init is not None and (init.card.architecture != name
                             or list(init.card.feature_spec) != list(data.spec.names)
                             or init.card.n_steps != data.x.shape[1]):
        raise ValueError("a warm start needs a checkpoint of the same architecture, features "
                         "and temporal grid")

    def normalise(rows: np.ndarray) -> np.ndarray:
        """Normalised float32 copies of ``data.x[rows]``, a chunk at a time (the patches of a
        full recipe are several GB: no whole-array temporaries)."""
        out = np.empty((len(rows), *data.x.shape[1:]), np.float32)
        for i in range(0, len(rows), 4096):
            chunk = np.moveaxis(data.x[rows[i : i + 4096]], feat_axis, -1)
            out[i : i + 4096] = np.moveaxis(norm.apply(chunk), -1, feat_axis)
        return out

    xtr, xva = normalise(tr), normalise(va)
    ytr, yva = data.y[tr], data.y[va]
    refs = None if data.references is None else torch.from_numpy(
        np.asarray(norm.apply(data.references), dtype=np.float32))
    rtr = None if refs is None else torch.from_numpy(data.ref_index[tr])
    rva = None if refs is None else torch.from_numpy(data.ref_index[va])
    htr = None if data.horizon is None else torch.from_numpy(data.horizon[tr])
    hva = None if data.horizon is None else torch.from_numpy(data.horizon[va])
    n_steps, n_features = data.x.shape[1], data.x.shape[2]
    card = ModelCard(
        name=name, architecture=name, config=dict(cfg.model_config), n_features=n_features,
        n_steps=n_steps, feature_spec=list(data.spec.names), grid=str(data.grid),
        normalisation=norm.to_dict(),
        training={"data": data.description, "data_hash": data.data_hash,
                  "pixels_train": int(len(tr)), "pixels_val": int(len(va)),
                  "fields_train": int(len(np.unique(data.field_key[tr]))),
                  "fields_val": int(len(np.unique(data.field_key[va]))),
                  "config": asdict(cfg)},
        builtin_reference=None if data.builtin_reference is None
        else data.builtin_reference.tolist(),
    )
    t0 = time.perf_counter()
    history: dict[str, Any] = {"epochs": []}
    if name == "random_forest":
        forest = ForestModel.fit(xtr, ytr, seed=cfg.seed, **cfg.model_config)
        pv = forest.predict_proba(xva)
        rep = classification_report(yva, pv.argmax(1), pv, list(CLASS_NAMES))
        history["best"] = {"epoch": 0, "val_macro_f1": rep["macro_f1"]}
        card.training["seconds"] = time.perf_counter() - t0
        return LoadedModel(card=card, module=forest, norm=norm), history

    model = create_model(name, n_features=n_features, n_steps=n_steps, n_classes=n_classes,
                         **cfg.model_config)
    if getattr(model, "relative", False) and refs is None:
        raise ValueError("a model with a reference needs training data with references "
                         "(load_training_data(..., reference_draws=N))")
    if isinstance(model, FFDNN) and init is not None:
        model.warm_start(init.module.state_dict())
    elif init is not None:
        model.load_state_dict(init.module.state_dict())
    if htr is not None and not getattr(model, "season_mask", False):
        raise ValueError("training data with season cuts needs a model with season_mask=True")
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=cfg.lr, total_steps=cfg.epochs * max(1, int(np.ceil(len(xtr) / cfg.batch_size)))
    )
    w = torch.tensor(class_weights(ytr, n_classes), dtype=torch.float32)
    gen = torch.Generator().manual_seed(cfg.seed)
    xt, yt = torch.from_numpy(xtr), torch.from_numpy(ytr)
    best_f1, best_state, best_epoch, stale = -1.0, None, -1, 0
    for epoch in range(cfg.epochs):
        model.train()
        order = torch.randperm(len(xt), generator=gen)
        total = 0.0
        for i in range(0, len(order), cfg.batch_size):
            idx = order[i : i + cfg.batch_size]
            if len(idx) < 2:
                continue
            xb = xt[idx]
            rb = None if refs is None else refs[rtr[idx]]
            hb = None if htr is None else htr[idx]
            if cfg.time_shift:
                shift = torch.randint(-cfg.time_shift, cfg.time_shift + 1, (len(idx),),
                                      generator=gen)
                if rb is None:
                    xb = apply_shift(shift, xb)
                else:
                    xb, rb = apply_shift(shift, xb, rb)
                if hb is not None:  # the season's horizon moves with its phenology
                    hb = (hb + shift).clamp(1, n_steps)
            if cfg.scene_jitter and rb is not None:
                xb, rb = scene_offsets(xb, rb, cfg.scene_jitter, gen)
            if cfg.input_noise:
                xb = xb + cfg.input_noise * torch.randn(xb.shape, generator=gen)
            loss = (model.training_loss(xb, yt[idx], w) if rb is None and hb is None
                    else model.training_loss(xb, yt[idx], w, ref=rb, horizon=hb))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if sched.last_epoch < sched.total_steps - 1:
                sched.step()
            total += float(loss.detach()) * len(idx)
        model.eval()
        pv = torch.softmax(predict_logits(model, xva, refs, rva, hva), 1).numpy()
        rep = classification_report(yva, pv.argmax(1), pv, list(CLASS_NAMES))
        row = {"epoch": epoch, "loss": total / len(xt), "val_accuracy": rep["overall_accuracy"],
               "val_macro_f1": rep["macro_f1"]}
        history["epochs"].append(row)
        if on_epoch:
            on_epoch(epoch, row)
        if rep["macro_f1"] > best_f1 + 1e-4:
            best_f1, best_epoch, stale = rep["macro_f1"], epoch, 0
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            stale += 1
            if stale >= cfg.patience:
                break
    assert best_state is not None
    model.load_state_dict(best_state)
    model.eval()
    card.calibration = calibrate(model, xtr, xva, yva, refs, rtr, rva, n_classes,
                                 htr=htr, hva=hva)
    history["best"] = {"epoch": best_epoch, "val_macro_f1": best_f1}
    card.training["seconds"] = time.perf_counter() - t0
    card.training["best_epoch"] = best_epoch
    return LoadedModel(card=card, module=model, norm=norm), history
