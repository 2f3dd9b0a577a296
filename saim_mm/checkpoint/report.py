"""What a layout conversion did besides renaming, for the converter tools to print."""
from dataclasses import dataclass, field
from typing import Dict, List, Tuple


@dataclass
class ConversionReport:
    """What a conversion did besides renaming.

    Attributes:
        dropped (list[tuple[str, tuple]]): source keys (and shapes) deliberately left out.
        added (list[tuple[str, str]]): target keys that have no source, with the reason and value.
        other_entries (list[str]): top-level checkpoint entries that are not weights (optimizer, meta, ...).
        arch (dict): the architecture read from the weights.
    """
    dropped: List[Tuple[str, tuple]] = field(default_factory=list)
    added: List[Tuple[str, str]] = field(default_factory=list)
    other_entries: List[str] = field(default_factory=list)
    arch: dict = field(default_factory=dict)

    def lines(self) -> List[str]:
        """Human-readable summary, one line per fact."""
        out = [f'architecture: {self.arch}'] if self.arch else []
        if self.other_entries:
            out.append(f'dropped checkpoint entries: {", ".join(self.other_entries)}')
        groups: Dict[str, int] = {}
        for key, _ in self.dropped:
            top = key.split('.')[0]
            groups[top] = groups.get(top, 0) + 1
        for top, count in groups.items():
            examples = [f'{k} {list(s)}' for k, s in self.dropped if k.split('.')[0] == top][:3]
            out.append(f'dropped {count} tensor(s) under {top!r}: {", ".join(examples)}'
                       f'{", ..." if count > 3 else ""}')
        for key, why in self.added:
            out.append(f'added {key}: {why}')
        return out
