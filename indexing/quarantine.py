"""The exact quarantine of an index run, and the memory of media that failed.

The quarantine file describes the *current* catalogue: it is rewritten by every run (atomically,
sorted by row), one record per bad row or failed medium, so it is byte-identical after any
number of re-runs and resumes. Media failures are remembered in a small JSON-lines file keyed by
the medium's identity (its URL, its path with size and modification time, or the hash of a text)
so that a re-run reports them without fetching or decoding them again, unless asked to retry.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import IO

from mosaicrec.errors import StoreError
from mosaicrec.indexing.catalogue import Rejected

__all__ = ["FailedMedia", "Quarantine", "atomic_write", "failed_media_path"]


def atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that a kill leaves the old file or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def failed_media_path(quarantine: Path) -> Path:
    """``x.quarantine.jsonl`` -> ``x.failed-media.jsonl`` (same folder)."""
    name = quarantine.name
    for suffix in (".quarantine.jsonl", ".jsonl"):
        if name.endswith(suffix):
            return quarantine.with_name(name[: -len(suffix)] + ".failed-media.jsonl")
    return quarantine.with_name(name + ".failed-media.jsonl")


class Quarantine:
    """Collects the records of one run; :meth:`write` replaces the file with them, sorted."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.rows: list[Rejected] = []

    @property
    def count(self) -> int:
        return len(self.rows)

    def add(self, record: Rejected) -> None:
        self.rows.append(record)

    def sort(self) -> None:
        self.rows.sort(key=lambda r: (r.row, r.field or "", r.reason))

    def write(self) -> None:
        self.sort()
        if self.path is not None:
            atomic_write(self.path, "".join(r.to_json() + "\n" for r in self.rows))


class FailedMedia:
    """Media that failed, by identity, with the reason. Appended as failures happen (a kill
    loses none) and compacted at the end of a run to the entries the catalogue still uses.

    With ``retry`` the remembered failures are known (:meth:`was_failed`) but not reused
    (:meth:`reason` returns ``None``), so those media are fetched and decoded again.
    """

    def __init__(self, path: Path | None, *, retry: bool = False) -> None:
        self.path = path
        self.retry = retry
        self.known: dict[str, tuple[str, str]] = {}  # key -> (field, reason)
        self.used: set[str] = set()
        self._out: IO[str] | None = None
        if path is not None and path.is_file():
            self._load(path)
        self.previous = set(self.known)
        if retry:
            self.known = {}

    def _load(self, path: Path) -> None:
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                entry = json.loads(line)
                key = entry["key"]
            except (ValueError, KeyError, TypeError):
                continue  # a line cut by a kill
            if entry.get("ok"):
                self.known.pop(key, None)
            else:
                self.known[key] = (str(entry.get("field")), str(entry.get("reason")))

    def was_failed(self, key: str) -> bool:
        return key in self.previous

    def reason(self, key: str) -> str | None:
        """The remembered reason ``key`` failed (marks it as still in use), or ``None``."""
        entry = self.known.get(key)
        if entry is None:
            return None
        self.used.add(key)
        return entry[1]

    def remember(self, key: str, field: str, reason: str) -> None:
        self.known[key] = (field, reason)
        self.used.add(key)
        self._append({"key": key, "field": field, "reason": reason})

    def succeeded(self, key: str) -> None:
        if key in self.previous or key in self.known:
            self.known.pop(key, None)
            self._append({"key": key, "ok": True})

    def _append(self, entry: dict[str, object]) -> None:
        if self.path is None:
            return
        try:
            if self._out is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._out = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - kept open
            self._out.write(json.dumps(entry) + "\n")
            self._out.flush()
        except OSError as err:
            raise StoreError(f"cannot record failed media in {self.path}: {err}") from err

    def close(self, *, compact: bool) -> None:
        """Close the file; ``compact`` rewrites it with the entries this run used."""
        if self._out is not None:
            self._out.close()
            self._out = None
        if compact and self.path is not None:
            keep = [(k, v) for k, v in self.known.items() if k in self.used]
            if keep or self.path.exists():
                atomic_write(self.path, "".join(
                    json.dumps({"key": k, "field": f, "reason": r}) + "\n" for k, (f, r) in keep
                ))
