"""Cost of training: FLOPs per image, peak memory, step time, each case in a fresh process, and a record of
what the figures ran on (:mod:`.provenance`)."""
from .provenance import command, machine, provenance, versions, write_results

__all__ = ['command', 'machine', 'provenance', 'versions', 'write_results']
