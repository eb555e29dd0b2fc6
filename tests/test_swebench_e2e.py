"""SWE-bench end to end on the sample, one instance per repository: `tasks import` →
`tasks validate` (gold patch, no change, causes) → `eval` of a predictions file, twice (the second run
is served from the cache). Images stay cached between runs (content-hashed tags).

Environments come from SWE-bench's own specs: the swebench 4.1.0 package when installed,
else its sdist fetched once from PyPI into the bashenv cache (only its constants file is
read). Building an environment needs PyPI too (pip installs the spec's pinned packages).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bashenv.swebench import specs
from bashenv.task import load_tasks
from tests.conftest import rid

SAMPLE = Path("/work/shared/swebench-sample")
for _parent in Path(__file__).resolve().parents:
    if (_parent / "shared" / "swebench-sample").is_dir():
        SAMPLE = _parent / "shared" / "swebench-sample"
        break
FLASK, PYTEST, REQUESTS = "pallets__flask-4992", "pytest-dev__pytest-7168", "psf__requests-3362"
# requests-3362's PASS_TO_PASS holds two tests that need a network (a connect timeout to
# 10.255.255.1); grading containers have none, so they fail here, and gold cannot resolve.
NETWORK_ONLY = {"tests/test_requests.py::TestTimeout::test_connect_timeout",
                "tests/test_requests.py::TestTimeout::test_total_timeout_connect"}


def _spec_source() -> dict[str, str]:
    if specs._installed_spec_file() is not None:
        return {}
    folder = Path(os.environ.get("BASHENV_CACHE", Path.home() / ".cache" / "bashenv")) / "swebench"
    sdist = folder / "swebench-4.1.0.tar.gz"
    if not sdist.is_file():
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary",
                        ":all:", "swebench==4.1.0", "-d", str(folder)], check=True)
    return {"BASHENV_SWEBENCH_SPECS": str(sdist)}


def _bashenv(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bashenv.cli", *args], capture_output=True,
                          text=True, env={**os.environ, "COLUMNS": "200", **env}, timeout=1800)


@pytest.fixture(scope="module")
def imported(tmp_path_factory, monkeypatch_module=None):
    env = _spec_source()
    out = tmp_path_factory.mktemp("swe") / "tasks"
    done = _bashenv("tasks", "import", str(SAMPLE / "instances.json"), "--repos",
                    str(SAMPLE / "repos"), "--ids", f"{FLASK},{PYTEST}", "--ids", REQUESTS,
                    "-o", str(out), env=env)
    assert done.returncode == 0, done.stderr
    assert "imported 3 instance(s)" in done.stdout
    return out, env


def test_import_then_validate_says_which_behave_and_why(imported, tmp_path):
    """`tasks validate --workers 3`: gold resolves and no change does not on flask and
    pytest; requests-3362's gold fixes its FAIL_TO_PASS test, and the validator puts the two
    PASS_TO_PASS tests that fail down to the network, by name."""
    out, env = imported
    done = _bashenv("tasks", "validate", str(out), "--workers", "3", "--run-id",
                    rid("swe-validate"), "--report", str(tmp_path / "validate.json"), env=env)
    assert done.returncode == 1, done.stdout + done.stderr  # requests-3362 does not behave
    result = json.loads((tmp_path / "validate.json").read_text())
    assert result["summary"] == {"behaves": [FLASK, PYTEST], "needs network": [REQUESTS]}, \
        done.stdout + done.stderr
    tasks = {t["task_id"]: t for t in result["tasks"]}
    for iid in (FLASK, PYTEST):
        assert (tasks[iid]["before_gold"], tasks[iid]["with_gold"]) == ("unresolved", "resolved")
    requests = tasks[REQUESTS]
    assert requests["causes"] == ["needs network"]
    named = {t for p in requests["problems"] for t in NETWORK_ONLY if t in p}
    assert named == NETWORK_ONLY and len(requests["problems"]) == 4  # each before and with gold
    assert "2 of 3 behave here" in done.stdout


def test_eval_writes_swebench_reports_and_a_rerun_is_cached(imported, tmp_path):
    out, env = imported
    sample = {json.loads(line)["instance_id"]: json.loads(line)
              for line in (SAMPLE / "preds-swe-agent-gpt4.jsonl").open()}
    gold = {t.id: t.gold_patch for t in load_tasks(out)}
    preds = [
        {"instance_id": FLASK, "model_name_or_path": "gold", "model_patch": gold[FLASK]},
        sample[PYTEST],  # SWE-agent's own prediction
        {"instance_id": REQUESTS, "model_name_or_path": "nothing", "model_patch": ""},
    ]
    (tmp_path / "preds.jsonl").write_text("".join(json.dumps(p) + "\n" for p in preds))
    run = tmp_path / "run"
    args = ["eval", str(tmp_path / "preds.jsonl"), "--tasks", str(out), "-o", str(run),
            "--workers", "3", "--run-id", rid("swe-eval")]
    first = _bashenv(*args, env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    report = json.loads((run / "report.json").read_text())
    assert report["total_instances"] == 3 and report["submitted_instances"] == 3
    assert report["resolved_ids"] == [FLASK] and report["empty_patch_ids"] == [REQUESTS]
    assert report["completed_ids"] == sorted([FLASK, PYTEST]) and report["error_ids"] == []
    for iid in (FLASK, PYTEST):
        per = json.loads((run / iid / "report.json").read_text())[iid]
        assert per["patch_successfully_applied"] and per["patch_exists"]
        assert (run / iid / "patch.diff").read_text() == next(
            p["model_patch"] for p in preds if p["instance_id"] == iid)
        output = (run / iid / "test_output.txt").read_text()
        assert re.search(r"^=+ .*\d+ (passed|failed).* in [\d.]+s =+$", output, re.MULTILINE)
        assert json.loads((run / iid / "verdict.json").read_text())["apply_method"] == "git apply"
    flask = json.loads((run / FLASK / "report.json").read_text())[FLASK]
    assert flask["resolved"] and flask["tests_status"]["PASS_TO_PASS"]["failure"] == []
    assert "applied with git apply" in first.stderr

    started = time.monotonic()
    again = _bashenv(*args, env=env)
    assert again.returncode == 0, again.stderr
    assert again.stderr.count("(cached)") == 2 and time.monotonic() - started < 60
    assert json.loads((run / "report.json").read_text()) == report


def test_gym_takes_an_instances_file_and_repos(imported):
    import gymnasium as gym

    import bashenv  # noqa: F401  (registers BashSWE-v0)

    env = gym.make("BashSWE-v0", tasks=str(SAMPLE / "instances.json"),
                   repos=str(SAMPLE / "repos"), run_id=rid("swe-gym"))
    try:
        os.environ.update(imported[1])
        specs.swebench_constants.cache_clear()
        obs, _ = env.reset(options={"task_id": FLASK})
        assert "toml" in obs["issue"].lower()
        obs, *_ = env.step("git log --oneline | wc -l; git remote | wc -l")
        assert obs["output"].split() == ["1", "0"]  # one commit, no remotes
    finally:
        env.close()
