"""The CLI and the runner end to end: real containers, real JSONL."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from bashenv.cli import app
from bashenv.images.engine import LABEL, client

from .conftest import SUITE_RUN_ID, TASKS_DIR, rid

cli = CliRunner(env={"COLUMNS": "250"})


def _lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_run_gold_resolves_everything_and_resumes(tmp_path):
    out = tmp_path / "gold.jsonl"
    result = cli.invoke(app, ["run", str(TASKS_DIR), "--workers", "2", "--output", str(out)])
    assert result.exit_code == 0, result.output
    records = _lines(out)
    assert len(records) >= 3 and all(r["outcome"] == "resolved" for r in records)
    assert "resolved 3/3" in result.output
    again = cli.invoke(app, ["run", str(TASKS_DIR), "--output", str(out)])
    assert again.exit_code == 0 and len(_lines(out)) == len(records)  # nothing re-run


def test_replay_agent_from_file(tmp_path):
    script = tmp_path / "cmds.txt"
    script.write_text("ls\ngit status --short\n")
    out = tmp_path / "replay.jsonl"
    result = cli.invoke(app, ["run", str(TASKS_DIR / "intervals-merge-unsorted"), "--agent",
                              "replay", "--replay", str(script), "--output", str(out)])
    assert result.exit_code == 0, result.output
    [record] = _lines(out)
    assert record["outcome"] == "unresolved" and record["steps"] == 3


def test_tasks_list_schema_and_validate():
    listed = cli.invoke(app, ["tasks", "list", str(TASKS_DIR)])
    assert listed.exit_code == 0 and "textkit-truncate-width" in listed.output
    schema = cli.invoke(app, ["tasks", "schema"])
    assert json.loads(schema.output)["title"] == "Task"
    validated = cli.invoke(app, ["tasks", "validate", str(TASKS_DIR)])
    assert validated.exit_code == 0, validated.output
    assert validated.output.count(": ok") == 3


def test_validate_reports_a_broken_task(tmp_path):
    task = tmp_path / "task.yaml"
    task.write_text("id: broken\nrepo: .\n")
    result = cli.invoke(app, ["tasks", "validate", str(task)])
    assert result.exit_code != 0
    assert "task.yaml" in str(result.exception) and "problem_statement" in str(result.exception)


def test_images_build_of_unchanged_tasks_builds_nothing():
    result = cli.invoke(app, ["images", "build", str(TASKS_DIR)])
    assert result.exit_code == 0 and "0 image(s) built" in result.output


def test_gc_removes_leftovers_of_dead_runs(base_image):
    client().containers.run(base_image, ["sleep", "infinity"], detach=True, network_mode="none",
                            labels={LABEL: rid("dead-run"), "bashenv.pid": "999999999",
                                    "bashenv.host": __import__("socket").gethostname()})
    result = cli.invoke(app, ["gc"])
    assert result.exit_code == 0
    assert not client().containers.list(all=True, filters={"label": f"{LABEL}={rid('dead-run')}"})


def test_bench_quick_prints_every_figure_the_issue_names():
    """A smoke run of the on-demand benchmark: the figures exist; their values are not judged here."""
    result = cli.invoke(app, ["bench", str(TASKS_DIR), "--quick", "--json"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    keys = {"step_p50_ms", "step_p99_ms", "reset_warm_p50_ms", "reset_cold_p50_ms",
            "grading_overhead_p50_s", "concurrent32_step_p50_ms", "host_rss_per_env_mb",
            "rebuild_unchanged_s", "peer_exec_step_p50_ms"}
    assert keys <= figures.keys()
    assert all(figures[k] > 0 for k in keys - {"rebuild_unchanged_s"})
    assert figures["rebuild_unchanged_builds"] == 0
    assert not client().containers.list(all=True, filters={"label": f"{LABEL}={SUITE_RUN_ID}-bench"})
