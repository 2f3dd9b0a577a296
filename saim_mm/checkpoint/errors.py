"""The exceptions of :mod:`saim_mm.checkpoint`; each also derives from the built-in exception callers catch."""


class CheckpointError(Exception):
    """Base of every checkpoint problem saim_mm reports; the message names the file, keys or shapes."""


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """The checkpoint path is not a file."""


class CheckpointLoadError(CheckpointError, RuntimeError):
    """A checkpoint file that cannot (or must not) be loaded."""


class ConversionError(CheckpointError, ValueError):
    """A state dict that does not have the layout expected of it."""
