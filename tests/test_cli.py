"""The CLI and the runner end to end: real containers, real JSONL."""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from typer.testing import CliRunner

from bashenv.cli import app
from bashenv.sandbox.engine import LABEL, client
from bashenv.sandbox.lifecycle import DEADMAN_LABEL

from .conftest import TASKS_DIR, rid

cli = CliRunner(env={"COLUMNS": "250"})


def _lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_run_gold_resolves_everything_and_resumes(tmp_path):
    out = tmp_path / "gold.jsonl"
    result = cli.invoke(app, ["run", str(TASKS_DIR), "--workers", "2", "--output", str(out),
                              "--run-id", rid("cli-gold")])
    assert result.exit_code == 0, result.output
    records = _lines(out)
    assert len(records) >= 3 and all(r["outcome"] == "resolved" for r in records)
    assert "resolved 3/3" in result.output
    again = cli.invoke(app, ["run", str(TASKS_DIR), "--output", str(out), "--run-id", rid("cli-gold")])
    assert again.exit_code == 0 and len(_lines(out)) == len(records)  # nothing re-run


def test_replay_agent_from_file(tmp_path):
    script = tmp_path / "cmds.txt"
    script.write_text("ls\ngit status --short\n")
    out = tmp_path / "replay.jsonl"
    result = cli.invoke(app, ["run", str(TASKS_DIR / "intervals-merge-unsorted"), "--agent",
                              "replay", "--replay", str(script), "--output", str(out),
                              "--run-id", rid("cli-replay")])
    assert result.exit_code == 0, result.output
    [record] = _lines(out)
    assert record["outcome"] == "unresolved" and record["steps"] == 3


def test_tasks_list_schema_and_validate():
    listed = cli.invoke(app, ["tasks", "list", str(TASKS_DIR)])
    assert listed.exit_code == 0 and "textkit-truncate-width" in listed.output
    schema = cli.invoke(app, ["tasks", "schema"])
    assert json.loads(schema.output)["title"] == "Task"
    validated = cli.invoke(app, ["tasks", "validate", str(TASKS_DIR), "--run-id", rid("validate")])
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


def test_gc_removes_a_stopped_leftover_and_keeps_a_running_container(base_image):
    """`bashenv gc` removes what is provably abandoned (a stopped container whose removal
    never happened) and never a running one, whoever owns it."""
    api = client().api
    labels = {LABEL: rid("dead-run"), DEADMAN_LABEL: "stdin"}
    made = []
    for command in (["true"], ["sleep", "infinity"]):
        made.append(api.create_container(base_image, command, labels=labels,
                                         host_config=api.create_host_config(network_mode="none"))["Id"])
        api.start(made[-1])
    stopped, running = made
    api.wait(stopped, timeout=30)
    try:
        result = cli.invoke(app, ["gc", "--run-id", rid("dead-run")])
        assert result.exit_code == 0, result.output
        mine = {"label": f"{LABEL}={rid('dead-run')}"}
        left = {box["Id"] for box in api.containers(all=True, filters=mine)}
        assert left == {running}
    finally:
        api.remove_container(running, force=True, v=True)


def test_bench_quick_prints_every_figure_the_issue_names():
    """A smoke run of the on-demand benchmark: the figures exist; their values are not judged here."""
    result = cli.invoke(app, ["bench", str(TASKS_DIR), "--quick", "--json", "--run-id", rid("bench")])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    keys = {"step_p50_ms", "step_p99_ms", "reset_warm_p50_ms", "reset_cold_p50_ms",
            "grading_overhead_p50_s", "concurrent32_step_p50_ms", "host_rss_per_env_mb",
            "rebuild_unchanged_s", "peer_exec_step_p50_ms"}
    assert keys <= figures.keys()
    assert all(figures[k] > 0 for k in keys - {"rebuild_unchanged_s"})
    assert figures["rebuild_unchanged_builds"] == 0
    assert not client().api.containers(all=True, filters={"label": f"{LABEL}={rid('bench')}"})


@contextmanager
def labels_seen(label: str) -> Iterator[set[str]]:
    """Ids of the containers labelled `label` that exist at some moment while the block runs."""
    seen: set[str] = set()
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            boxes = client().api.containers(all=True, filters={"label": f"{LABEL}={label}"})
            seen.update(box["Id"] for box in boxes)
            time.sleep(0.1)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        yield seen
    finally:
        done.set()
        watcher.join()


def _replay_sleep(tmp_path, label_args: list[str], env: dict[str, str] | None = None):
    script = tmp_path / "cmds.txt"
    script.write_text("sleep 1\n")
    runner = CliRunner(env={"COLUMNS": "250", **(env or {})})
    return runner.invoke(app, ["run", str(TASKS_DIR / "intervals-merge-unsorted"), "--agent", "replay",
                               "--replay", str(script), "--output", str(tmp_path / "r.jsonl"),
                               *label_args])


def test_run_id_option_labels_every_container_of_the_run(tmp_path):
    label = rid("cli-run-id")
    with labels_seen(label) as seen:
        result = _replay_sleep(tmp_path, ["--run-id", label])
    assert result.exit_code == 0, result.output
    assert len(seen) >= 2  # the agent's container and the grader's
    assert not client().api.containers(all=True, filters={"label": f"{LABEL}={label}"})


def test_run_id_defaults_to_the_environment_variable(tmp_path):
    label = rid("cli-run-id-env")
    with labels_seen(label) as seen:
        result = _replay_sleep(tmp_path, [], env={"BASHENV_RUN_ID": label})
    assert result.exit_code == 0, result.output
    assert seen


def test_run_exits_1_naming_the_tasks_that_ended_in_error(tmp_path):
    """A task whose image cannot be made is an error, not a verdict: the other tasks still
    run, and the exit code says something went wrong."""
    suite = tmp_path / "suite"
    shutil.copytree(TASKS_DIR / "intervals-merge-unsorted", suite / "intervals-merge-unsorted")
    shutil.copytree(TASKS_DIR / "repos" / "intervals", suite / "repos" / "intervals")
    (suite / "broken").mkdir()
    (suite / "broken" / "task.yaml").write_text(
        "id: broken-base\nrepo: ../repos/intervals\nproblem_statement: x\n"
        "environment: {base: no-such-recipe}\ntests: {fail_to_pass: [tests/test_ops.py::test_contains]}\n")
    out = tmp_path / "gold.jsonl"
    result = cli.invoke(app, ["run", str(suite), "--output", str(out), "--run-id", rid("cli-error")])
    assert result.exit_code == 1, result.output
    records = {r["task_id"]: r for r in _lines(out)}
    assert records["intervals-merge-unsorted"]["outcome"] == "resolved"
    assert records["broken-base"]["outcome"] == "error"
    assert "ended in an error" in result.output
    assert "broken-base (error)" in result.output and "no base recipe named 'no-such-recipe'" in result.output
