"""Training reconstruction networks: data on the fly, the loop, checkpoints and resume.

- :func:`train` runs a :class:`~stablerecon.config.TrainingConfig` into a run folder;
- :func:`load` rebuilds a trained method from a checkpoint (JSON + safetensors);
- :func:`pretrained` loads the shipped weights of a preset (see :func:`available_pretrained`);
- :class:`TrainingData` generates the batches (phantoms or image patches, noise, jitter);
- :func:`train_classifier` trains an SDNet classifier (:class:`~stablerecon.config.ClassifierConfig`),
  :func:`load_classifier` reads it back, :func:`accuracy` scores it.

What lives here: the training configs (``config``), batches (``data``), the loop (``loop``), run
folders (``runs``), checkpoints (``checkpoint``), shipped weights (``pretrained``) and the
classifier training (``classify``). It may import the networks (:mod:`stablerecon.nets`,
:mod:`stablerecon.csc`) and everything below them, and :mod:`stablerecon.config_base`; never
:mod:`stablerecon.audit`, :mod:`stablerecon.recipes`, :mod:`stablerecon.config` or the CLI.
"""

from .checkpoint import (
    Checkpoint,
    CheckpointError,
    build_model,
    export,
    load,
    read_checkpoint,
    save_checkpoint,
)
from .classify import ClassifierResult, accuracy, load_classifier, train_classifier
from .data import TrainingData, measure
from .loop import TrainResult, evaluate, learning_rate, train
from .pretrained import available_pretrained, pretrained, pretrained_path

__all__ = [
    "train",
    "TrainResult",
    "evaluate",
    "learning_rate",
    "load",
    "read_checkpoint",
    "save_checkpoint",
    "build_model",
    "export",
    "Checkpoint",
    "CheckpointError",
    "TrainingData",
    "measure",
    "pretrained",
    "pretrained_path",
    "available_pretrained",
    "train_classifier",
    "ClassifierResult",
    "load_classifier",
    "accuracy",
]
