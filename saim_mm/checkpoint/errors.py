"""The exceptions of :mod:`saim_mm.checkpoint`: one base class, one subclass per kind of problem.

Each subclass also derives from the built-in exception callers caught before this package existed
(``FileNotFoundError``, ``RuntimeError``, ``ValueError``), so existing ``except`` clauses keep working.
"""


class CheckpointError(Exception):
    """Base of every checkpoint problem saim_mm reports; the message names the file, keys or shapes."""


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """The checkpoint path is not a file."""


class CheckpointLoadError(CheckpointError, RuntimeError):
    """A checkpoint file that cannot (or must not) be loaded; the message names the file and the reason."""


class ConversionError(CheckpointError, ValueError):
    """A state dict that does not have the layout a conversion expects (message names keys and shapes)."""
