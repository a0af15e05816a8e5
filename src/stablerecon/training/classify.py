"""Training image classifiers (SDNet with CSC layers, or its plain-convolution baseline).

:func:`train_classifier` runs a :class:`~stablerecon.config.ClassifierConfig` into a run folder:
Adam on the cross-entropy over seeded, shuffled mini-batches of the training part of a
:func:`~stablerecon.data.classification_data` split, validation accuracy after every epoch, a
checkpoint after every epoch (resume), and at the end the weights of the best validation
accuracy as ``model.safetensors`` + ``model.json``, which :func:`load_classifier` reads back
(never unpickled; the SHA-256 of the weights is checked). :func:`accuracy` is the fraction of
correctly classified images.

A classifier checkpoint ``NAME`` is, as for reconstruction networks
(:mod:`stablerecon.training.checkpoint`), ``NAME.safetensors`` (weights and batch-norm
statistics), ``NAME.optim.safetensors`` (Adam's state, the torch RNG state and the
power-iteration vectors of the CSC layers) and ``NAME.json`` (format ``stablerecon-classifier``,
architecture, config, epoch, history, SHA-256 of both files), the JSON written last.
"""

from __future__ import annotations

import math
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from ..config_base import config_of
from ..csc import SDNet, csc_layers
from ..data.classification import classification_data
from ..files import write_atomic, write_json
from ..validation import positive_int
from .checkpoint import Checkpoint, CheckpointError, network_state, read_checkpoint_meta, write_checkpoint
from .config import ClassifierConfig
from .runs import RunResult, check_run_dir, checkpoint_name, prune, write_run_config

__all__ = ["train_classifier", "ClassifierResult", "load_classifier", "accuracy", "classifier_learning_rate",
           "CLASSIFIER_FORMAT", "CLASSIFIER_RESULTS_SCHEMA"]

CLASSIFIER_FORMAT = "stablerecon-classifier"
CLASSIFIER_VERSION = 1
CLASSIFIER_RESULTS_SCHEMA = 1
_KEEP = 2  # newest epoch checkpoints kept besides the best one


@torch.no_grad()
def accuracy(model: nn.Module, x: Tensor, y: Tensor, batch: int = 512) -> float:
    """Fraction of the images ``x`` ``(N, C, H, W)`` whose predicted class (the arg-max of
    ``model(x)``, logits ``(N, num_classes)``) equals the label ``y`` ``(N,)`` (integers).

    The model is evaluated in eval mode (batch-norm running statistics) in batches of
    ``batch`` images; its training mode is restored afterwards."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"argument 'model' must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(x, Tensor) or x.ndim != 4 or not x.is_floating_point() or x.shape[0] == 0:
        got = f"{tuple(x.shape)} {x.dtype}" if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"argument 'x' must be a non-empty floating tensor (N, C, H, W), got {got}")
    if not isinstance(y, Tensor) or y.shape != (x.shape[0],) or y.is_floating_point() or y.is_complex():
        got = f"{tuple(y.shape)} {y.dtype}" if isinstance(y, Tensor) else type(y).__name__
        raise ValueError(f"argument 'y' must be an integer tensor of shape ({x.shape[0]},), got {got}")
    batch = positive_int(batch, "batch")
    was_training = model.training
    model.eval()
    try:
        correct = 0
        for start in range(0, x.shape[0], batch):
            logits = model(x[start:start + batch])
            correct += int((logits.argmax(dim=1) == y[start:start + batch].to(logits.device)).sum())
    finally:
        model.train(was_training)
    return correct / x.shape[0]


def classifier_learning_rate(config: ClassifierConfig, step: int, total: int) -> float:
    """Learning rate at global step ``step`` (0-based) of ``total``: ``lr`` (``constant``) or
    ``lr (1 + cos(pi step / total)) / 2`` (``cosine``)."""
    lr = config.train.lr
    if config.train.schedule == "constant":
        return lr
    return 0.5 * lr * (1.0 + math.cos(math.pi * step / max(1, total)))


@dataclass
class ClassifierResult(RunResult):
    """What :func:`train_classifier` produced.

    ``model``: the best-validation weights (an :class:`~stablerecon.csc.SDNet` in eval mode),
    read back from ``run_dir/model.json``; ``history``: one entry per epoch (``epoch``,
    ``train_loss``, ``train_accuracy``, ``val_accuracy``, ``lr``, ``seconds``); ``best``:
    ``epoch``, ``val_accuracy`` and ``checkpoint`` of the best epoch; ``val_accuracy`` of the
    best epoch; ``test_accuracy``: of ``model`` on the test part; ``seconds``: training time
    (over all resumptions).
    """

    val_accuracy: float
    test_accuracy: float
    seconds: float


def _architecture(cfg: ClassifierConfig, in_channels: int, num_classes: int) -> dict[str, Any]:
    m = cfg.model
    return {"kind": "sdnet", "in_channels": in_channels, "num_classes": num_classes, "width": m.width,
            "csc": m.csc, "lam": m.lam, "steps": m.steps, "kernel_size": m.kernel_size}


def _build(arch: dict[str, Any], seed: int) -> SDNet:
    return SDNet(arch["in_channels"], arch["num_classes"], width=arch["width"], csc=arch["csc"],
                 lam=arch["lam"], steps=arch["steps"], kernel_size=arch["kernel_size"], seed=seed)


def _permutation(seed: int, epoch: int, n: int) -> Tensor:
    """The order of the training samples in epoch ``epoch``: a pure function of seed and epoch,
    so a resumed run sees the same batches as an unbroken one."""
    g = torch.Generator().manual_seed(int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0]))
    return torch.randperm(n, generator=g)


def _power_vectors(model: nn.Module) -> dict[str, Tensor]:
    """The warm-start vectors of the CSC layers' power iterations (for ``L = ||D||^2``)."""
    out = {}
    for i, layer in enumerate(csc_layers(model)):
        vector = layer.power_vector
        if vector is not None:
            out[f"power.{i}"] = vector.detach().cpu().contiguous()
    return out


def _restart_power(model: nn.Module, vectors: dict[str, Tensor] | None = None) -> None:
    """Drop the CSC layers' cached ``L`` (and, from a checkpoint, set their warm-start vectors).

    ``L`` is recomputed by a power iteration warm-started from the previous vector, so its last
    bits depend on that vector. Every epoch starts by recomputing ``L`` from the vector saved in
    the previous epoch's checkpoint; a resumed run, which restores that vector, then takes
    exactly the steps of an unbroken one."""
    for i, layer in enumerate(csc_layers(model)):
        layer.reset_power(None if vectors is None else vectors.get(f"power.{i}"))


def _check_finite(model: nn.Module, where: str) -> None:
    for key, value in network_state(model).items():
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise FloatingPointError(f"training diverged: {key!r} is not finite {where}; lower train.lr "
                                     f"(nothing was saved from this epoch)")


def _save(folder: Path, name: str, model: nn.Module, cfg: ClassifierConfig, arch: dict[str, Any],
          info: dict[str, Any], optimizer: torch.optim.Optimizer | None) -> Path:
    """Write checkpoint ``name``: weights, then optimiser state (with the CSC layers' power
    vectors), then the JSON; return its path."""
    described = {"architecture": arch, "config": cfg.model_dump()}
    return write_checkpoint(folder, name, model, CLASSIFIER_FORMAT, CLASSIFIER_VERSION, described, info,
                            optimizer, _power_vectors(model))


def _read(path: str | Path) -> Checkpoint:
    """Read and validate a classifier checkpoint's JSON (the JSON, its weights file, or a run
    folder holding ``model.json``)."""
    path, meta, cfg = read_checkpoint_meta(path, CLASSIFIER_FORMAT, CLASSIFIER_VERSION,
                                           "stablerecon classifier checkpoint",
                                           ("weights", "weights_sha256", "architecture", "config"),
                                           ClassifierConfig, "config", "classifier config")
    arch = meta["architecture"]
    model_keys = ("width", "csc", "lam", "steps", "kernel_size")
    expected_keys = {"kind", "in_channels", "num_classes", *model_keys}
    if not isinstance(arch, dict) or set(arch) != expected_keys or arch.get("kind") != "sdnet" \
            or {k: arch[k] for k in model_keys} != cfg.model.model_dump():
        raise CheckpointError(f"checkpoint {str(path)!r}: 'architecture' {arch!r} is not an SDNet of "
                              f"the model config it records {cfg.model.model_dump()}")
    # Checkpoint's file checks (SHA-256, tensor names, shapes and dtypes, optimiser state) need
    # only the JSON; its config field holds the classifier config here.
    return Checkpoint(path, meta, cfg)  # type: ignore[arg-type]


def _model_of(ck: Checkpoint) -> SDNet:
    try:
        model = _build(ck.meta["architecture"], ck.config.seed)
    except (ValueError, TypeError) as err:
        raise CheckpointError(f"checkpoint {str(ck.path)!r}: cannot build its architecture: {err}") from None
    ck.load_into(model)
    return model


def load_classifier(path: str | Path) -> SDNet:
    """Rebuild a trained classifier from ``model.json`` + ``model.safetensors`` (or any
    classifier checkpoint JSON, its weights file, or a finished run folder).

    Returns the :class:`~stablerecon.csc.SDNet` in eval mode: images ``(B, C, H, W)`` in
    ``[0, 1]`` to logits ``(B, num_classes)``.

    Raises
    ------
    CheckpointError
        Missing files, invalid JSON, a weights file that is corrupt, was modified (its SHA-256
        differs from the JSON's) or does not match the recorded architecture.
    """
    if not isinstance(path, (str, Path)):
        raise TypeError(f"argument 'path' must be a str or Path, got {type(path).__name__}")
    return _model_of(_read(path)).eval()


def train_classifier(config: ClassifierConfig | dict | str | Path, run_dir: str | Path, resume: bool = True,
                     progress: bool = True) -> ClassifierResult:
    """Train the classifier a config describes, checkpointing into ``run_dir``.

    Every epoch visits the training part of the config's data set
    (:func:`~stablerecon.data.classification_data` with the config's seed) in an order drawn
    from ``(seed, epoch)``, in batches of ``train.batch_size``, taking Adam steps on the
    cross-entropy with the scheduled learning rate; then it measures the validation accuracy and
    writes a checkpoint and ``results.json``. With ``resume`` (default) a folder that holds
    checkpoints continues from the newest complete one and, on the same machine, ends with the
    same weights, bit for bit, as a run that was never interrupted. A loss or weight that is not
    finite stops the run with a ``FloatingPointError`` before anything of that epoch is saved.

    Files written into ``run_dir``: ``config.yaml``; ``checkpoints/step-*.{json,safetensors,
    optim.safetensors}`` (global step at the end of each epoch; the newest two and the best are
    kept); ``results.json`` (schema, history, best epoch, test accuracy, seconds; rewritten
    atomically after every epoch); at the end ``model.safetensors`` + ``model.json``, the
    weights of the best validation accuracy (the last epoch among ties), which
    :func:`load_classifier` reads.

    Parameters
    ----------
    config:
        A :class:`~stablerecon.config.ClassifierConfig`, a mapping, or the path of a YAML
        file; validated before any work.
    run_dir:
        Output folder (created). A folder holding a run with a different config is refused.
    resume:
        Continue from the newest checkpoint in ``run_dir`` (default); ``False`` refuses a folder
        that already holds checkpoints.
    progress:
        Show a tqdm bar (loss, last validation accuracy).

    Returns
    -------
    ClassifierResult
        The best model, history, best validation and test accuracy, training seconds.
    """
    cfg = config_of(config, ClassifierConfig)
    if not isinstance(run_dir, (str, Path)):
        raise TypeError(f"argument 'run_dir' must be a str or Path, got {type(run_dir).__name__}")
    run = Path(run_dir)
    ckdir = run / "checkpoints"
    latest = check_run_dir(run, cfg, resume)
    data = classification_data(cfg.dataset, seed=cfg.seed, size=cfg.image_size)  # before any output
    write_run_config(run, cfg)

    arch = _architecture(cfg, data.image_shape[0], data.num_classes)
    model = _build(arch, cfg.seed)
    with torch.no_grad():
        model.input_mean.fill_(float(data.x_train.mean()))
        model.input_std.fill_(float(data.x_train.std()))
    t = cfg.train
    optimizer = torch.optim.Adam(model.parameters(), lr=t.lr, weight_decay=t.weight_decay)
    n_train = data.x_train.shape[0]
    steps_per_epoch = math.ceil(n_train / t.batch_size)
    total = t.epochs * steps_per_epoch

    epoch, seconds = 0, 0.0
    history: list[dict[str, Any]] = []
    best: dict[str, Any] = {"epoch": None, "val_accuracy": None, "checkpoint": None}
    if latest is not None:
        ck = _read(latest)
        if ck.config != cfg or ck.meta["architecture"] != arch:
            raise CheckpointError(f"checkpoint {str(latest)!r} was written by a different config")
        ck.load_into(model)
        ck.restore_optimizer(optimizer)
        _restart_power(model, ck.optimizer_state())
        epoch, seconds = ck.meta["epoch"], ck.meta["seconds"]
        history, best = ck.meta["history"], ck.meta["best"]

    def write_results(test_accuracy: float | None) -> None:
        write_json(run / "results.json", {
            "schema": CLASSIFIER_RESULTS_SCHEMA, "name": cfg.name, "dataset": cfg.dataset,
            "completed": test_accuracy is not None, "epochs_run": len(history), "train_seconds": seconds,
            "best": best, "test_accuracy": test_accuracy, "history": history,
            "sizes": {"train": n_train, "val": len(data.y_val), "test": len(data.y_test)}})

    bar = tqdm(total=total, initial=epoch * steps_per_epoch, disable=not progress, desc=f"train {cfg.name}",
               unit="step", dynamic_ncols=True)
    last_val = history[-1]["val_accuracy"] if history else float("nan")
    model.train()
    try:
        while epoch < t.epochs:
            started = time.perf_counter()
            _restart_power(model)
            order = _permutation(cfg.seed, epoch, n_train)
            loss_sum, correct = 0.0, 0
            for i in range(steps_per_epoch):
                step = epoch * steps_per_epoch + i
                lr = classifier_learning_rate(cfg, step, total)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                idx = order[i * t.batch_size:(i + 1) * t.batch_size]
                try:
                    logits = model(data.x_train[idx])
                except FloatingPointError as err:  # a CSC layer's dictionary turned non-finite
                    raise FloatingPointError(f"{err} at epoch {epoch + 1}, step {step}; lower train.lr "
                                             f"(nothing of this epoch was saved)") from None
                loss = F.cross_entropy(logits, data.y_train[idx])
                if not torch.isfinite(loss):
                    raise FloatingPointError(f"training loss is {float(loss.detach())} at epoch {epoch + 1}, "
                                             f"step {step}; lower train.lr (nothing of this epoch was saved)")
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                value = float(loss.detach())
                loss_sum += value * len(idx)
                correct += int((logits.detach().argmax(1) == data.y_train[idx]).sum())
                bar.update(1)
                bar.set_postfix(loss=f"{value:.3f}", val=f"{last_val:.4f}")
            _check_finite(model, f"after epoch {epoch + 1}")
            last_val = accuracy(model, data.x_val, data.y_val)
            epoch += 1
            seconds += time.perf_counter() - started
            name = checkpoint_name(epoch * steps_per_epoch)
            history.append({"epoch": epoch, "train_loss": loss_sum / n_train,
                            "train_accuracy": correct / n_train, "val_accuracy": last_val, "lr": lr,
                            "seconds": seconds})
            if best["val_accuracy"] is None or last_val >= best["val_accuracy"]:
                best = {"epoch": epoch, "val_accuracy": last_val, "checkpoint": name}
            _save(ckdir, name, model, cfg, arch, {"epoch": epoch, "global_step": epoch * steps_per_epoch,
                                                  "seconds": seconds, "history": history, "best": best,
                                                  "val_accuracy": last_val}, optimizer)
            prune(ckdir, _KEEP, {best["checkpoint"]})
            write_results(None)
    finally:
        bar.close()

    # The deliverable: the best weights as model.safetensors + model.json (no optimiser state).
    best_ck = _read(ckdir / f"{best['checkpoint']}.json")
    best_model = _model_of(best_ck)
    test_accuracy = accuracy(best_model, data.x_test, data.y_test)
    write_atomic(run / "model.safetensors", lambda p: shutil.copyfile(best_ck.weights_path, p))
    meta = {**best_ck.meta, "weights": "model.safetensors", "optimizer": None, "test_accuracy": test_accuracy}
    for key in ("optimizer_sha256", "optimizer_param_groups"):
        meta.pop(key, None)
    write_json(run / "model.json", meta)
    write_results(test_accuracy)
    final = load_classifier(run / "model.json")
    return ClassifierResult(final, run, history, best, float(best["val_accuracy"]), test_accuracy, seconds)
