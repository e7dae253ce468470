"""Reversible attribute patches: each remembers the original it replaced, so uninstall restores it exactly."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, List


@dataclass
class Patch:
    owner: Any
    """The module or class whose attribute is replaced."""
    name: str
    original: Any
    replacement: Any

    def apply(self) -> None:
        setattr(self.owner, self.name, self.replacement)

    def restore(self) -> None:
        # Restore only what we put there: a later patch by someone else stays.
        if self.owner.__dict__.get(self.name) is self.replacement:
            setattr(self.owner, self.name, self.original)


class PatchSet:
    """The patches of one install, applied and restored together."""

    def __init__(self) -> None:
        self.patches: List[Patch] = []

    def replace(self, owner: Any, name: str, replacement: Any) -> Any:
        """Put ``replacement`` at ``owner.name``; returns the original (read from the owner's own dict, so a
        class attribute is the plain function, not a bound method)."""
        original = owner.__dict__[name]
        patch = Patch(owner, name, original, replacement)
        patch.apply()
        self.patches.append(patch)
        return original

    def restore(self) -> None:
        for patch in reversed(self.patches):
            patch.restore()
        self.patches.clear()
