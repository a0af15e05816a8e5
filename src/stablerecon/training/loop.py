"""The training loop: Adam, schedules, clipping, validation, early stopping, checkpoints, resume."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn
from tqdm.auto import tqdm

from ..config_base import config_of
from ..metrics import psnr, ssim
from .checkpoint import CheckpointError, build_model, export, read_checkpoint, save_checkpoint, write_atomic
from .config import TrainingConfig
from .data import TrainingData
from .runs import RunResult, check_run_dir, checkpoint_name, prune, write_run_config

__all__ = ["train", "TrainResult", "learning_rate", "evaluate", "BatchSource", "RESULTS_SCHEMA"]

RESULTS_SCHEMA = 1


def learning_rate(config: TrainingConfig, step: int) -> float:
    """Learning rate at global step ``step`` (0-based) under the config's schedule."""
    t = config.train
    total = t.epochs * t.steps_per_epoch
    if t.schedule == "constant":
        return t.lr
    if t.schedule == "step":
        return t.lr * t.gamma ** ((step // t.steps_per_epoch) // t.step_size)
    floor = t.lr * t.min_lr_ratio
    return floor + 0.5 * (t.lr - floor) * (1.0 + math.cos(math.pi * step / max(1, total)))


class BatchSource(Protocol):
    """What :func:`train` draws data from (:class:`~stablerecon.training.TrainingData` is one):
    ``batch(step, batch_size) -> (x, y)``, a pure function of the step (for bitwise resume), and
    ``validation() -> (x, y)``, a fixed set."""

    def batch(self, step: int, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]: ...

    def validation(self) -> tuple[torch.Tensor, torch.Tensor]: ...


def _mse(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return torch.mean((x_hat - x) ** 2)


@torch.no_grad()
def evaluate(method: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 16) -> dict[str, float]:
    """Mean PSNR and SSIM (data range 1) of ``method`` on images ``x`` from measurements ``y``.

    Targets that are not images ``(B, C, H, W)`` (e.g. vectors ``(B, N)``) get the PSNR of the
    mean squared error over the whole set, ``-10 log10(MSE)``, and SSIM ``nan``."""
    was_training = method.training
    method.eval()
    values: dict[str, list[torch.Tensor]] = {"psnr": [], "ssim": []}
    image = x.ndim == 4
    try:
        for start in range(0, x.shape[0], batch_size):
            sl = slice(start, start + batch_size)
            x_hat = method(y[sl])
            if image:
                values["psnr"].append(psnr(x_hat, x[sl], data_range=1.0))
                values["ssim"].append(ssim(x_hat, x[sl], data_range=1.0))
            else:
                values["psnr"].append(((x_hat - x[sl]) ** 2).reshape(x_hat.shape[0], -1).sum(1))
    finally:
        method.train(was_training)
    if not image:
        mse = float(torch.cat(values["psnr"]).sum()) / max(1, x[0].numel() * x.shape[0])
        return {"psnr": -10.0 * math.log10(max(mse, 1e-300)), "ssim": float("nan")}
    return {k: float(torch.cat(v).mean()) for k, v in values.items()}


@dataclass
class TrainResult(RunResult):
    """What a training run produced: the best method (``model``), where the files are
    (``run_dir``), the history and best epoch (:class:`~stablerecon.training.runs.RunResult`),
    whether it ``completed`` or ``stopped_early``, and the training ``seconds``."""

    completed: bool
    stopped_early: bool
    seconds: float
    extras: dict[str, Any] = field(default_factory=dict)


def train(config: TrainingConfig | dict | str | Path, run_dir: str | Path, *, resume: bool = True,
          progress: bool = True, device: str | torch.device = "cpu", model: nn.Module | None = None,
          data: BatchSource | None = None,
          loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None) -> TrainResult:
    """Train the network a config describes, checkpointing into ``run_dir``.

    Each step draws a fresh batch (a pure function of the seed and the step, see
    :class:`~stablerecon.training.TrainingData`), takes an Adam step on the mean squared error
    with the scheduled learning rate and gradient clipping. Each epoch ends with validation
    PSNR/SSIM, a checkpoint and an early-stopping check; ``checkpoint_every`` adds checkpoints
    inside epochs. With ``resume`` (default) a run folder that holds checkpoints continues from
    the newest one, and on CPU ends with the same weights, bit for bit, as a run that was
    never interrupted.

    Files written into ``run_dir``: ``config.yaml``, ``checkpoints/step-*.{json,safetensors,
    optim.safetensors}``, ``results.json`` (history, best epoch, wall time; rewritten atomically
    each epoch) and, when the run ends, ``model.json`` + ``model.safetensors`` (the weights of
    the best validation PSNR), which :func:`~stablerecon.training.load` reads.

    Parameters
    ----------
    config:
        A :class:`~stablerecon.config.TrainingConfig`, a mapping, or the path of a YAML file;
        validated before any work.
    run_dir:
        Output folder (created). A folder holding a run with a different config is refused.
    resume:
        Continue from the newest checkpoint in ``run_dir`` (default); ``False`` refuses a
        folder that already holds checkpoints.
    progress:
        Show a tqdm bar with loss, batch PSNR and the last validation PSNR.
    device:
        Torch device to train on.
    model, data, loss:
        Generic use beyond the config's networks and phantoms: a network to train instead of
        the one ``config.model`` describes (seeded by the caller; called as ``model(y)``; its
        weights are checkpointed and loaded back into it at the end), a
        :class:`BatchSource` instead of ``config.data``, and a loss ``loss(x_hat, x)`` instead
        of the mean squared error. ``config.train`` and ``config.seed`` still rule the
        optimisation. The run folder records only the config, so resuming with other
        overrides is the caller's mistake; the class of a given ``model`` is checked.
    """
    cfg = config_of(config, TrainingConfig)
    run = Path(run_dir)
    ckdir = run / "checkpoints"
    latest = check_run_dir(run, cfg, resume)
    write_run_config(run, cfg)

    device = torch.device(device)
    torch.manual_seed(cfg.seed)
    custom = model is not None
    op = cfg.operator.build() if model is None or data is None else None
    model = (model if custom else build_model(cfg, op)).to(device)
    model_class = type(model).__qualname__ if custom else None
    loss_fn = _mse if loss is None else loss
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.train.lr, weight_decay=cfg.train.weight_decay)
    data = TrainingData(cfg.data, op, seed=cfg.seed) if data is None else data
    x_val, y_val = data.validation()
    x_val, y_val = x_val.to(device), y_val.to(device)

    t = cfg.train
    epoch, step_in_epoch, seconds = 0, 0, 0.0
    history: list[dict[str, Any]] = []
    best: dict[str, Any] = {"val_psnr": None, "val_ssim": None, "epoch": None, "checkpoint": None}
    since_best = 0
    losses: list[float] = []  # training losses of the current epoch so far
    if latest is not None:
        ck = read_checkpoint(latest)
        if ck.config != cfg:
            raise CheckpointError(f"checkpoint {str(latest)!r} was written by a different config")
        if ck.meta.get("model_class") != model_class:
            raise CheckpointError(f"checkpoint {str(latest)!r} holds a {ck.meta.get('model_class')!r} "
                                  f"model, not {model_class!r}")
        ck.load_into(model)
        ck.restore_optimizer(optimizer)
        epoch, step_in_epoch = ck.meta["epoch"], ck.meta["step_in_epoch"]
        seconds = ck.meta["seconds"]
        history, best, since_best = ck.meta["history"], ck.meta["best"], ck.meta["since_best"]
        losses = ck.meta["epoch_losses"]

    def info(**extra: Any) -> dict[str, Any]:
        return {"epoch": epoch, "step_in_epoch": step_in_epoch,
                "global_step": epoch * t.steps_per_epoch + step_in_epoch, "seconds": seconds,
                "history": history, "best": best, "since_best": since_best, "epoch_losses": losses,
                **({"model_class": model_class} if custom else {}), **extra}

    def write_results(completed: bool, stopped_early: bool) -> None:
        doc = {"schema": RESULTS_SCHEMA, "name": cfg.name, "completed": completed,
               "stopped_early": stopped_early, "epochs_run": len(history), "train_seconds": seconds,
               "best": best, "history": history}
        write_atomic(run / "results.json", lambda p: p.write_text(json.dumps(doc, indent=1)))

    total = t.epochs * t.steps_per_epoch
    stopped_early = bool(history) and t.patience is not None and since_best >= t.patience
    bar = tqdm(total=total, initial=epoch * t.steps_per_epoch + step_in_epoch, disable=not progress,
               desc=f"train {cfg.name}", unit="step", dynamic_ncols=True)
    last_val = history[-1]["val_psnr"] if history else float("nan")
    model.train()
    try:
        while epoch < t.epochs and not stopped_early:
            started = time.perf_counter()
            while step_in_epoch < t.steps_per_epoch:
                g = epoch * t.steps_per_epoch + step_in_epoch
                lr = learning_rate(cfg, g)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                x, y = data.batch(g, t.batch_size)
                x, y = x.to(device), y.to(device)
                value = loss_fn(model(y), x)
                if not torch.isfinite(value):
                    raise FloatingPointError(f"training loss is {float(value)} at step {g}; lower train.lr "
                                             f"or set train.grad_clip")
                optimizer.zero_grad(set_to_none=True)
                value.backward()
                if t.grad_clip is not None:
                    nn.utils.clip_grad_norm_(model.parameters(), t.grad_clip)
                optimizer.step()
                losses.append(float(value.detach()))
                step_in_epoch += 1
                seconds += time.perf_counter() - started
                started = time.perf_counter()
                bar.update(1)
                batch_psnr = -10 * math.log10(max(losses[-1], 1e-12))
                bar.set_postfix(loss=f"{losses[-1]:.2e}", psnr=f"{batch_psnr:.1f}", val=f"{last_val:.2f}")
                if (t.checkpoint_every and step_in_epoch % t.checkpoint_every == 0
                        and step_in_epoch < t.steps_per_epoch):
                    save_checkpoint(ckdir, checkpoint_name(g + 1), model, cfg, info(), optimizer)
                    prune(ckdir, t.keep, {best["checkpoint"] or ""})
            metrics = evaluate(model, x_val, y_val, batch_size=t.batch_size)
            last_val = metrics["psnr"]
            if not math.isfinite(metrics["ssim"]):
                metrics["ssim"] = None  # non-image targets: no SSIM (kept out of the JSON as NaN)
            epoch, step_in_epoch = epoch + 1, 0
            seconds += time.perf_counter() - started
            epoch_loss, losses = sum(losses) / max(1, len(losses)), []
            name = checkpoint_name(epoch * t.steps_per_epoch)
            history.append({"epoch": epoch, "train_loss": epoch_loss, "lr": lr,
                            "val_psnr": metrics["psnr"], "val_ssim": metrics["ssim"], "seconds": seconds})
            if best["val_psnr"] is None or metrics["psnr"] > best["val_psnr"] + t.min_delta:
                best = {"val_psnr": metrics["psnr"], "val_ssim": metrics["ssim"], "epoch": epoch,
                        "checkpoint": name}
                since_best = 0
            else:
                since_best += 1
            stopped_early = t.patience is not None and since_best >= t.patience
            save_checkpoint(ckdir, name, model, cfg, info(metrics=metrics), optimizer)
            prune(ckdir, t.keep, {best["checkpoint"]})
            write_results(completed=False, stopped_early=stopped_early)
    finally:
        bar.close()

    # The deliverable: the best weights as model.safetensors + model.json (no optimiser state).
    export(ckdir / f"{best['checkpoint']}.json", run, "model", config_file=False)
    write_results(completed=True, stopped_early=stopped_early)
    best_ck = read_checkpoint(run / "model.json")
    final = (best_ck.load_into(model).eval() if custom else best_ck.build(op)).to(device)
    return TrainResult(final, run, history, best, True, stopped_early, seconds)
