"""The version of stablerecon (one place; imported by the root package, checkpoints and reports)."""

__version__ = "0.1.0"
