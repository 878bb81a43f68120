"""Kill harness (issue 14): ``mosaicrec index`` and ``mosaicrec events import`` are killed with
SIGKILL at seeded random points, re-run after each kill, and the result is compared with an
uninterrupted run. Slow (minutes): run with ``pytest -m slow tests/test_reliability_kill.py``.

Index kill points: a random time in the run, right after a random batch was written (the
indexer announces its points on stderr under ``MOSAICREC_TEST_POINTS=1``), or between the last
upsert and the build (``MOSAICREC_TEST_PAUSE_BEFORE_OPTIMIZE`` holds the run there); runs build
a segment every 64 points as a bulk load does, so kills also land in those builds. Each cycle
starts from an empty collection, is killed until the catalogue is done, then runs once more
uninterrupted; it must then hold the same ids, no duplicate, the same vectors and payloads, a
built search index and a byte-identical quarantine as the reference run.
"""

from __future__ import annotations

import os
import random
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from reliability_support import CliRun as Run
from reliability_support import assert_same_vectors, messy_catalogue
from reliability_support import index_args as _index_args
from reliability_support import read_collection as _collection

pytestmark = pytest.mark.slow

SEED = int(os.environ.get("MOSAICREC_KILL_SEED", "14"))
INDEX_KILLS = int(os.environ.get("MOSAICREC_INDEX_KILLS", "24"))
EVENT_KILLS = int(os.environ.get("MOSAICREC_EVENT_KILLS", "22"))
RESULTS: dict[str, object] = {}  # figures for the report, printed at the end of each test


# -- mosaicrec index ----------------------------------------------------------------------------
def _state(store: Path) -> tuple[int, str]:
    """Points and search-index state of a collection a kill left (0, "absent" if none)."""
    from mosaicrec.errors import StoreError
    from mosaicrec.indexing.stores import StoreConfig, open_store

    try:
        with open_store(StoreConfig(backend="edge", path=str(store), collection="items")) as s:
            return s.count(), s.info()["search_index"]
    except StoreError:
        return 0, "absent"


def test_index_survives_sigkill_anywhere(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    catalogue = messy_catalogue(tmp_path / "catalogue", copies=4)  # ~230 rows, ~30 batches
    reference = tmp_path / "reference"
    run = Run(_index_args(catalogue, reference))
    assert run.wait_for("batch-written")
    first_batch = time.monotonic() - run.start
    total = run.finish()
    ref_vectors, ref_payloads, ref_state, ref_quarantine = _collection(reference)
    assert ref_state == "built" and len(ref_quarantine.splitlines()) == 8 + 2 * 4  # + copies
    kills, kinds, runs, chains = 0, {"time": 0, "batch": 0, "before-optimize": 0}, 0, 0
    mid_load = owed_build = 0  # kills that left a partial collection / an unbuilt index

    def check(store: Path) -> None:
        vectors, payloads, state, quarantine = _collection(store)
        assert state == "built", f"chain {chains}: search index {state}"
        assert_same_vectors(ref_vectors, vectors)
        assert payloads == ref_payloads
        assert quarantine == ref_quarantine

    store = tmp_path / "killed"
    while kills < INDEX_KILLS:
        kind = rng.choice(["time", "batch", "batch", "before-optimize"])
        pause = {"MOSAICREC_TEST_PAUSE_BEFORE_OPTIMIZE": "60"} if kind == "before-optimize" else {}
        run = Run(_index_args(catalogue, store), pause)
        runs += 1
        if kind == "time":
            time.sleep(rng.uniform(max(0.0, first_batch - 1.0), total))
        elif kind == "batch":
            run.wait_for("batch-written", count=rng.randint(1, 6))
            time.sleep(rng.uniform(0.0, 0.3))
        else:
            run.wait_for("before-optimize")
            time.sleep(rng.uniform(0.0, 0.5))
        if run.kill():
            kills += 1
            kinds[kind] += 1
            points, state = _state(store)
            mid_load += 0 < points < len(ref_vectors)
            owed_build += state == "pending"
            continue
        run.finish()  # this re-run completed the collection: compare, then start afresh
        check(store)
        chains += 1
        shutil.rmtree(store)
    Run(_index_args(catalogue, store)).finish()  # the last chain ends uninterrupted
    runs += 1
    check(store)
    chains += 1
    RESULTS["index"] = {"kills": kills, "by_kind": kinds, "mid_load": mid_load,
                        "left_build_owed": owed_build, "runs": runs, "chains_compared": chains,
                        "items": len(ref_vectors), "seed": SEED,
                        "uninterrupted_run_s": round(total, 1)}
    print("\nindex kill harness:", RESULTS["index"])
    assert kills >= min(20, INDEX_KILLS)
    assert kinds["before-optimize"] >= INDEX_KILLS // 8 and kinds["batch"] >= INDEX_KILLS // 5


# -- mosaicrec events import --------------------------------------------------------------------
def _events(store: Path) -> tuple[list[tuple], str]:
    from mosaicrec.engine.events import SQLiteEventStore

    with SQLiteEventStore(store / "items.events.sqlite") as events:
        cols = events.export()
    rows = sorted(zip(cols.user_id.tolist(), cols.item_id.tolist(), cols.type.tolist(),
                      cols.timestamp.tolist(), np.nan_to_num(cols.value, nan=-1.0).tolist(),
                      strict=True))
    return rows, (store / "items.events.quarantine.jsonl").read_text()


def _count(store: Path) -> int:
    import sqlite3

    if not (store / "items.events.sqlite").is_file():
        return 0
    with sqlite3.connect(store / "items.events.sqlite") as db:
        return db.execute("SELECT COUNT(*) FROM events").fetchone()[0]


def test_events_import_survives_sigkill_anywhere(tmp_path: Path, movielens_dir: Path) -> None:
    rng = random.Random(SEED + 1)
    log = tmp_path / "log" / "u.data"
    log.parent.mkdir()
    data = (movielens_dir / "u.data").read_text()
    log.write_text(data + "1\t2\tnot-a-rating\t881250949\n7\t\t4\t881250950\nonly-one-field\n")
    args = lambda store: ["events", "import", str(log), "--path", str(store),  # noqa: E731
                          "--no-progress"]
    run = Run(args(tmp_path / "reference"))
    total = run.finish()
    ref_rows, ref_quarantine = _events(tmp_path / "reference")
    assert len(ref_rows) == 100_000 and len(set(ref_rows)) == len(ref_rows)
    assert len(ref_quarantine.splitlines()) == 3
    kills, runs, cycles, partial = 0, 0, 2, 0
    for cycle in range(cycles):
        store = tmp_path / f"killed-{cycle}"
        while kills < EVENT_KILLS * (cycle + 1) // cycles:
            run = Run(args(store))
            runs += 1
            time.sleep(rng.uniform(0.0, total))
            if run.kill():
                kills += 1
                partial += 0 < _count(store) < len(ref_rows)  # killed in the middle
            elif run.proc.returncode == 0:
                run.finish()
        Run(args(store)).finish()
        runs += 1
        rows, quarantine = _events(store)
        assert len(rows) == len(ref_rows), "events lost or doubled"
        assert rows == ref_rows
        assert quarantine == ref_quarantine
    RESULTS["events"] = {"kills": kills, "mid_import": partial, "runs": runs, "cycles": cycles,
                         "events": len(ref_rows),
                         "seed": SEED + 1, "uninterrupted_run_s": round(total, 1)}
    print("\nevents kill harness:", RESULTS["events"])
    assert kills >= min(20, EVENT_KILLS) and partial >= EVENT_KILLS // 4
