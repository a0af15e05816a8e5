"""The ``stablerecon`` command line.

``stablerecon demo``  the embedded stability audit: trained networks vs FIRENET and classical solvers.
``stablerecon audit CONFIG.yaml``  audit operators x methods x images x tests; report.html.
``stablerecon compare``  reconstruct a shipped image with the classical methods; PSNR/SSIM.
``stablerecon list``  list the operator kinds, masks, images, method kinds, audit tests and weights.
``stablerecon train CONFIG.yaml``  train a reconstruction network (checkpoints, resume).
``stablerecon train-classifier CONFIG.yaml``  train an SDNet (CSC) or plain-convolution classifier.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from .audit import AuditResult
    from .config import AuditConfig

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="stablerecon: imaging inverse problems with stability measured next to accuracy.",
)


def _first_doc_line(obj: object) -> str:
    doc = inspect.getdoc(obj) or ""
    line = doc.strip().splitlines()[0] if doc.strip() else ""
    return line.replace("``", "").replace("\\", "")


@app.command("list")
def list_components() -> None:
    """List what configs can name: operator kinds, sampling masks, images, method kinds, audit
    tests and shipped trained methods."""
    from . import data
    from .audit import TESTS
    from .operators import masks
    from .operators.kinds import OPERATOR_KINDS
    from .recipes import FIXED_IMAGES, METHODS, SEEDED_IMAGES
    from .registry import Registry

    def table(title: str, registry: Registry, fields: bool = True) -> None:
        typer.echo(title)
        for entry in registry.entries():
            extra = f"  [fields: {', '.join(entry.fields) or '-'}]" if fields else ""
            typer.echo(f"  {entry.name:<14} {entry.summary}{extra}")

    typer.echo("operators (operators: [{kind: NAME, size: N, ...}]):")
    for entry in OPERATOR_KINDS.entries():
        fields = ", ".join([*entry.meta.get("uses", ()), *entry.fields]) or "-"
        typer.echo(f"  {entry.name:<14} {entry.summary}  [fields: {fields}]")
    typer.echo("masks (operator field mask):")
    for name, fn in masks.MASKS.items():
        typer.echo(f"  {name:<24} {_first_doc_line(fn)}")
    typer.echo("images:")
    for name in data.available_images():
        typer.echo(f"  {name}")
    typer.echo(f"  {', '.join(FIXED_IMAGES)} (generated)")
    seeded = ", ".join(f"{n}:SEED" for n in SEEDED_IMAGES)
    typer.echo(f"  {seeded} (random phantoms; NAME:FIRST-LAST for a range)")
    table("methods (methods: [{name: LABEL, kind: NAME, ...}]):", METHODS)
    table("audit tests (stablerecon audit CONFIG.yaml; tests: [...]):", TESTS, fields=False)
    from .training import available_pretrained, read_checkpoint
    from .training.pretrained import pretrained_path

    typer.echo("trained methods (kind: pretrained, weights: NAME; stablerecon.training.pretrained(name)):")
    for name in available_pretrained():
        ck = read_checkpoint(pretrained_path(name))
        op = ck.config.operator
        kinds = {"postprocessing": "PostProcessing", "itnet": "ItNet", "csc": "CSCDenoiser"}
        kind = kinds[ck.config.model.kind]
        typer.echo(f"  {name:<20} {kind:<16} {op.label()}, trained on {ck.config.data.source}")
    from .runner import available_demos, demo_config

    typer.echo("demos (stablerecon demo --modality NAME; --print-config shows the YAML):")
    for name in available_demos():
        typer.echo(f"  {name:<14} {demo_config(name).operators[0].label()}")


def _load_config(path: Path, model: type) -> object:
    """The config at ``path`` validated as ``model``; exit status 2 with the error otherwise."""
    from .config import ConfigError, load_yaml

    try:
        return load_yaml(path, model)
    except ConfigError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from None


def _call(fn: object, errors: tuple[type[BaseException], ...], *args: object, **kwargs: object) -> object:
    """``fn(*args, **kwargs)``; exit status 1 with the message of any of ``errors``."""
    try:
        return fn(*args, **kwargs)  # type: ignore[operator]
    except errors as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(1) from None


def _print_summary(result: AuditResult) -> None:
    worst = f"worst@{100 * result.options.report_budget:g}%"
    width = max(8, *(len(m) for m in result.methods)) + 2
    many = len(result.images) > 1
    typer.echo(f"{'method':<{width}}{'PSNR':>7}{worst:>10}{'amplif.':>9}  verdict"
               + (f"  (medians over {len(result.images)} images)" if many else ""))

    def cell(row: dict, key: str, digits: str) -> str:
        value = row.get(key)
        return "-" if value is None else f"{value:{digits}}"

    for row in result.summary():
        typer.echo(f"{row['method']:<{width}}{cell(row, 'psnr', '.2f'):>7}"
                   f"{cell(row, 'worst_relative_change', '.4f'):>10}{cell(row, 'amplification', '.2f'):>9}  "
                   f"{row['verdict']}")


def _run_audit(cfg: AuditConfig, out: Path, progress: bool, device: str | None = None,
               executor: str = "serial", address: str | None = None) -> None:
    from .allocator import retain_freed_memory
    from .runner import run_audit_config

    retain_freed_memory()  # thousands of batch-sized allocations: reuse freed heap, fewer page faults
    try:
        results = run_audit_config(cfg, out, progress=progress, device=device, executor=executor,
                                   address=address)
    except KeyboardInterrupt as err:
        typer.echo(f"\n{err or 'interrupted'}", err=True)
        raise typer.Exit(130) from None
    except (ValueError, TypeError, ImportError, ConnectionError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(1) from None
    failed = 0
    for result in results:
        typer.echo(f"\n{result.operator}")
        _print_summary(result)
        typer.echo(f"report: {result.path / 'report.html'}")
        for key, failure in sorted(result.failures.items()):
            typer.echo(f"FAILED {key.label}: {failure['kind']}: {failure['message']}", err=True)
        failed += len(result.failures)
    if len(results) > 1:
        typer.echo(f"index: {out / 'index.html'}")
    if failed:
        typer.echo(f"{failed} unit(s) failed; the rest of the audit is saved. Fix the cause and run the "
                   f"same command again: finished units are kept, failed ones are retried.", err=True)
        raise typer.Exit(1)


_DEVICE = typer.Option("--device", help="Run methods and searches on this device (cpu, cuda, "
                       "cuda:1); default: where they are built (the CPU).")
_EXECUTOR = typer.Option("--executor", help="serial (this process) or ray (Ray tasks on a "
                         "local or existing cluster; pip install 'stablerecon\\[ray]').")
_ADDRESS = typer.Option("--address", help="Ray cluster to join (auto, HOST:PORT, ray://HOST:PORT); "
                        "default: start a local one. Only with --executor ray.")


@app.command()
def demo(
    modality: Annotated[str, typer.Option(help="Which problem: fourier (default), or another of "
                                              "`stablerecon list` (demos).")] = "fourier",
    out: Annotated[Path | None, typer.Option(help="Run folder (resumes if it holds a finished part); "
                                                  "default runs/demo, runs/demo-MODALITY.")] = None,
    progress: bool = typer.Option(True, help="Show progress bars."),
    device: Annotated[str | None, _DEVICE] = None,
    executor: Annotated[str, _EXECUTOR] = "serial",
    address: Annotated[str | None, _ADDRESS] = None,
    print_config: bool = typer.Option(False, "--print-config", help="Print the modality's audit config "
                                      "(YAML, a starting point for your own) and exit."),
) -> None:
    """The stability audit on shipped data. The default (fourier): 25% Fourier sampling at
    128 x 128, the shipped U-Nets (trained with and without jitter) and ItNet against FIRENET,
    TV, l1-wavelet and zero-filling; --modality picks another problem. Writes results.json,
    figures and report.html into OUT and prints the summary and the report's path."""
    from .runner import available_demos, demo_config, demo_path

    if modality not in available_demos():
        raise typer.BadParameter(f"unknown modality {modality!r}; choose from {available_demos()}",
                                 param_hint="--modality")
    if print_config:
        typer.echo(demo_path(modality).read_text(), nl=False)
        return
    if out is None:
        out = Path("runs/demo") if modality == "fourier" else Path(f"runs/demo-{modality}")
    _run_audit(demo_config(modality), out, progress, device, executor, address)


@app.command()
def audit(
    config: Annotated[Path, typer.Argument(help="Audit config (YAML; see stablerecon.config.AuditConfig).")],
    out: Annotated[Path | None, typer.Option(help="Run folder (default: runs/<config name>).")] = None,
    progress: bool = typer.Option(True, help="Show progress bars."),
    device: Annotated[str | None, _DEVICE] = None,
    executor: Annotated[str, _EXECUTOR] = "serial",
    address: Annotated[str | None, _ADDRESS] = None,
) -> None:
    """Audit the operators x methods x images x tests of CONFIG (validated before any work).

    Results are saved as each unit (method x test x chunk of images) finishes; after an
    interruption the same command resumes. With --executor ray the units run as Ray tasks
    (each worker rebuilds the methods and operators from CONFIG)."""
    from .config import AuditConfig

    cfg = _load_config(config, AuditConfig)
    _run_audit(cfg, out if out is not None else Path("runs") / cfg.name, progress, device, executor, address)


@app.command()
def compare(
    image: str = typer.Option("camera", help="Shipped image (see `stablerecon list`)."),
    size: int = typer.Option(128, min=8, help="Image size in pixels (square)."),
    rate: float = typer.Option(0.25, min=0.001, max=1.0, help="k-space sampling rate."),
    mask: str = typer.Option("variable_density", help="Sampling pattern (see `stablerecon list`)."),
    noise: float = typer.Option(0.01, min=0.0, help="Relative measurement noise level."),
    seed: int = typer.Option(0, help="Seed of the mask and the noise."),
) -> None:
    """Reconstruct a shipped image from subsampled Fourier data; print PSNR and SSIM of the
    zero-filled adjoint, l1-wavelet (FISTA), TV and FIRENET."""
    from . import data, metrics
    from .nets import FIRENet
    from .operators import SubsampledFourier, masks
    from .operators import noise as noise_models
    from .solvers import SparseReconstructor

    if mask not in masks.MASKS:
        raise typer.BadParameter(f"unknown mask {mask!r}; choose from {sorted(masks.MASKS)}",
                                 param_hint="--mask")
    try:
        x = data.image(image, size=size)
    except ValueError as err:
        raise typer.BadParameter(str(err), param_hint="--image") from err
    op = SubsampledFourier(masks.MASKS[mask](size, rate, seed=seed))
    y = op.A(x)
    if noise > 0:
        y = y + noise_models.gaussian_like(y, rel=noise, seed=seed)
    typer.echo(f"image {image} {size}x{size}, {mask} mask at rate {op.rate:.3f}, noise {noise:.3g}")
    typer.echo(f"{'method':<24}{'PSNR [dB]':>10}{'SSIM':>8}")
    methods = {
        "zero-filled adjoint": lambda y: op.A_dagger(y).real,
        "l1-wavelet (FISTA)": SparseReconstructor("fista", op),
        "TV": SparseReconstructor("tv", op),
        "FIRENET": FIRENet(op),
    }
    for name, method in methods.items():
        x_hat = method(y).clamp(0, 1)
        psnr = float(metrics.psnr(x_hat, x, data_range=1.0).mean())
        ssim = float(metrics.ssim(x_hat, x, data_range=1.0).mean())
        typer.echo(f"{name:<24}{psnr:>10.2f}{ssim:>8.3f}")


@app.command()
def train(
    config: Annotated[Path, typer.Argument(help="Training config (YAML; see configs/).")],
    out: Annotated[Path | None, typer.Option(help="Run folder (default: runs/<config name>).")] = None,
    resume: bool = typer.Option(True, help="Continue from the newest checkpoint in the run folder."),
    progress: bool = typer.Option(True, help="Show a progress bar."),
    device: str = typer.Option("cpu", help="Torch device."),
) -> None:
    """Train a reconstruction network described by CONFIG (validated before any work).

    Writes config.yaml, checkpoints/, results.json and, at the end, model.json +
    model.safetensors (the best validation weights) into the run folder; an interrupted run
    resumes from its newest checkpoint when started again."""
    from .config import TrainingConfig
    from .training import CheckpointError
    from .training import train as run_training

    cfg = _load_config(config, TrainingConfig)
    run_dir = out if out is not None else Path("runs") / cfg.name
    result = _call(run_training, (CheckpointError, ValueError), cfg, run_dir, resume=resume,
                   progress=progress, device=device)
    best = result.best
    typer.echo(f"best validation PSNR {best['val_psnr']:.2f} dB, SSIM {best['val_ssim']:.4f} "
               f"(epoch {best['epoch']} of {len(result.history)}"
               f"{', stopped early' if result.stopped_early else ''}), {result.seconds / 60:.1f} min")
    typer.echo(f"model: {result.run_dir / 'model.json'}")


@app.command("train-classifier")
def train_classifier(
    config: Annotated[Path, typer.Argument(help="Classifier config (YAML; see configs/classifiers/).")],
    out: Annotated[Path | None, typer.Option(help="Run folder (default: runs/<config name>).")] = None,
    resume: bool = typer.Option(True, help="Continue from the newest checkpoint in the run folder."),
    progress: bool = typer.Option(True, help="Show a progress bar."),
) -> None:
    """Train an image classifier described by CONFIG (SDNet with CSC layers, or the plain
    convolutional baseline; validated before any work).

    Writes config.yaml, checkpoints/, results.json and, at the end, model.json +
    model.safetensors (the best validation weights) into the run folder and prints the
    validation and test accuracy; an interrupted run resumes when started again."""
    from .config import ClassifierConfig
    from .training import CheckpointError
    from .training import train_classifier as run_training

    cfg = _load_config(config, ClassifierConfig)
    run_dir = out if out is not None else Path("runs") / cfg.name
    result = _call(run_training, (CheckpointError, ValueError, ImportError, FloatingPointError), cfg, run_dir,
                   resume=resume, progress=progress)
    typer.echo(f"best validation accuracy {100 * result.val_accuracy:.2f}% (epoch {result.best['epoch']} "
               f"of {len(result.history)}), test accuracy {100 * result.test_accuracy:.2f}%, "
               f"{result.seconds:.1f} s")
    typer.echo(f"model: {result.run_dir / 'model.json'}")


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover - python -m stablerecon.cli
    app()
