"""Where local media may come from: the catalogue's folder and the configured media roots.

A catalogue is data, and data must not choose which files of the machine get read: a path such
as ``../../etc/passwd``, an absolute path elsewhere, or a symlink leading out of a root is
refused with a reason. Paths are resolved (symlinks followed) before the check. Payloads keep
the path *relative to its root*, so a collection does not record the machine's layout; the
roots are tried in order (catalogue folder first) to find a relative path again.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["MediaRoots", "MediaRef", "REMOTE_SCHEMES"]

REMOTE_SCHEMES = ("http://", "https://")


@dataclass(frozen=True)
class MediaRef:
    """A medium allowed by the roots: what to open and what to show."""

    source: str  # absolute resolved path, or the URL
    display: str  # the path relative to its root (as given), or the URL
    remote: bool = False


class MediaRoots:
    """An ordered list of folders local media must lie in (the first is the catalogue's)."""

    def __init__(self, roots: Sequence[str | Path]) -> None:
        resolved: list[Path] = []
        for root in roots:
            path = Path(root).expanduser().resolve()
            if path not in resolved:
                resolved.append(path)
        if not resolved:
            raise ValueError("at least one media root is needed")
        self.roots = resolved

    @classmethod
    def for_catalogue(
        cls, catalogue_dir: str | Path, extra: Iterable[str | Path] = ()
    ) -> MediaRoots:
        return cls([catalogue_dir, *extra])

    def describe(self) -> str:
        return ", ".join(str(r) for r in self.roots)

    def resolve(self, value: str) -> MediaRef:
        """The medium ``value`` names; ``ValueError`` with the reason when it is not allowed."""
        value = value.strip()
        lowered = value.lower()
        if lowered.startswith(REMOTE_SCHEMES):
            return MediaRef(value, value, remote=True)
        if "://" in value[:16]:
            raise ValueError(f"{value!r}: only http(s) URLs and local paths are supported")
        path = Path(os.path.expanduser(value))
        if path.is_absolute():
            target = path.resolve()
            for root in self.roots:
                if target.is_relative_to(root):
                    return MediaRef(str(target), target.relative_to(root).as_posix())
            raise ValueError(self._outside(value))
        fallback = None
        for root in self.roots:
            target = (root / path).resolve()
            if not target.is_relative_to(root):
                continue
            ref = MediaRef(str(target), target.relative_to(root).as_posix())
            if target.exists():
                return ref
            fallback = fallback or ref
        if fallback is None:
            raise ValueError(self._outside(value))
        return fallback  # inside a root but missing: reading it reports "not found"

    def locate(self, relative: str) -> Path | None:
        """The file a payload path names (first root that has it), or ``None``."""
        if relative.lower().startswith(REMOTE_SCHEMES):
            return None
        for root in self.roots:
            target = (root / relative).resolve()
            if target.is_relative_to(root) and target.exists():
                return target
        return None

    def _outside(self, value: str) -> str:
        return (f"path {value!r} is outside the media roots ({self.describe()}): only files "
                "under the catalogue's folder or a configured media root are read")
