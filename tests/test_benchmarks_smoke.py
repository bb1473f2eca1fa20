"""The benchmark runner works: its smoke mode (N=3, one repetition, no Kedro) writes its results."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"

EXPECTED_ROWS = {
    "floor-python",
    "floor-read-3",
    "ours-package-cold",
    "ours-doit-noop",
    "ours-cli-noop",
    "ours-doit-edit",
    "ours-cli-edit",
    "ours-pull",
    "ours-build-reqs",
    "ours-build-reqs-check",
    "large-cold",
    "large-cold-doit-p2",
    "large-cold-cli-p2",
    "large-doit-noop",
}


def test_smoke_run_writes_results(tmp_path: Path) -> None:
    out = tmp_path / "results.md"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_"))}
    # Tests reach only 127.0.0.1: the runner's first (untimed) compile would resolve against
    # PyPI; with no index it can only use what pip-tools cached, else the two rows are skipped.
    env.update(PIP_NO_INDEX="1", PIP_CONFIG_FILE=os.devnull)
    proc = subprocess.run(
        [
            sys.executable,
            str(BENCHMARKS / "run.py"),
            "--smoke",
            "--work",
            str(tmp_path / "work"),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    data = json.loads(out.with_suffix(".json").read_text(encoding="utf-8"))
    rows = {row["id"]: row for row in data["rows"]}
    assert set(rows) >= EXPECTED_ROWS, sorted(EXPECTED_ROWS - set(rows))
    assert data["meta"]["smoke"] is True
    assert data["meta"]["kedro"] is False
    assert data["meta"]["input_files"]["3"] == 33

    for rid in EXPECTED_ROWS - {"ours-build-reqs", "ours-build-reqs-check"}:
        row = rows[rid]
        assert row["status"] != "ERROR", (rid, row["error"])
        assert len(row["samples"]) == 1, rid
        assert row["median_s"] > 0, rid
        assert row["peak_rss_mb"] > 0, rid
    # The first compile needs an index; without one those two rows are skipped, not broken.
    for rid in ("ours-build-reqs", "ours-build-reqs-check"):
        assert rows[rid]["status"] != "ERROR", (rid, rows[rid]["error"])

    # Incremental checks are verified by the runner itself, whatever the timings.
    assert rows["ours-package-cold"]["samples"][0]["executed"] == 3
    assert rows["ours-doit-noop"]["samples"][0]["executed"] == 0
    assert rows["ours-doit-edit"]["samples"][0]["executed"] == 1
    assert rows["ours-pull"]["samples"][0]["executed"] == 3

    text = out.read_text(encoding="utf-8")
    assert "## All rows" in text
    for label in (
        "package --all, cold",
        "no-op `doit package`",
        "one parameter file edited",
        "pull --all into a fresh project",
        "floor: interpreter start-up",
    ):
        assert label in text, label
    assert "Smoke run" in text
