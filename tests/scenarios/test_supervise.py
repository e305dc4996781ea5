"""`installation supervise`: its own options work in any position, the show's flags go after `--`."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import small_show
from tests.scenarios.conftest import run_cli


def test_supervise_options_after_the_show_and_child_flags_after_the_dashes(tmp_path: Path) -> None:
    show = small_show(tmp_path, name="sup")
    stats = tmp_path / "child-stats.json"
    # --max-restarts 0: the child's own end (--frames) ends the supervisor too, so the test is bounded
    res = run_cli(["supervise", show, "--hang-s", "30", "--max-restarts", "0", "--backoff-s", "0.1",
                   "--", "--headless", "--frames", "20", "--stats", stats], tmp_path, timeout=120)
    out = res.stdout + res.stderr
    assert "unrecognized arguments" not in out and "Traceback" not in out, out
    assert stats.is_file(), out  # the child ran with the flags after `--`
    child = json.loads(stats.read_text())
    assert child["frames_presented"] >= 20
    status = json.loads((tmp_path / "state-root" / "sup" / "supervise.json").read_text())
    assert [e["rc"] for e in status["exits"]] == [0]  # one child, it ended well
    assert status["state"] == "gave up" and res.returncode == 1  # as --max-restarts 0 says


def test_supervise_options_before_the_show_still_work(tmp_path: Path) -> None:
    show = small_show(tmp_path, name="sup")
    stats = tmp_path / "child-stats.json"
    res = run_cli(["supervise", "--max-restarts", "0", show, "--", "--headless", "--frames", "5", "--stats", stats],
                  tmp_path, timeout=120)
    assert stats.is_file(), res.stdout + res.stderr


def test_show_flags_without_the_dashes_are_refused_with_a_hint(tmp_path: Path) -> None:
    show = small_show(tmp_path, name="sup")
    res = run_cli(["supervise", show, "--headless"], tmp_path, timeout=60)
    assert res.returncode == 2
    assert "--headless" in res.stderr and "after --" in res.stderr
    assert not (tmp_path / "state-root" / "sup" / "supervise.json").exists()  # no show was started
