"""The llm agent end to end: a scripted OpenAI-compatible server on 127.0.0.1, the real
openai client in between, real containers and grading underneath."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from typer.testing import CliRunner

import bashenv
from bashenv.agents import heredoc_write
from bashenv.cli import app
from bashenv.runner import read_trajectory

from .conftest import TASKS_DIR, rid
from .llm_server import ScriptedEndpoint, bash, error, hang, submit, text

TASK = TASKS_DIR / "intervals-merge-unsorted"
cli = CliRunner(env={"COLUMNS": "250"})


def _last_tool_output(body: dict) -> str:
    return next(m["content"] for m in reversed(body["messages"]) if m["role"] == "tool")


def _write(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


def test_tool_calls_explore_fix_and_submit_through_retries(tmp_path):
    """429, then a hung request (client timeout), then tool calls that look around, apply the
    fix and submit: resolved, with trajectory, cast, predictions and usage recorded; a re-run
    re-uses the result and a changed prompt runs again."""
    fix = (TASK / "gold.patch").read_text()

    def patch_after_seeing_the_repo(body: dict) -> dict:
        assert "intervals" in _last_tool_output(body)  # the agent saw `ls`'s output
        return bash(heredoc_write("/tmp/fix.patch", fix) + "\ngit apply /tmp/fix.patch")

    script = [error(429, "slow down", {"retry-after": "0"}), hang(3), bash("ls", "Look first."),
              patch_after_seeing_the_repo, bash("python3 -m pytest -q tests 2>&1 | tail -2"),
              submit()]
    config = _write(tmp_path / "agent.yaml", {
        "request_timeout": 1, "retries": 3, "backoff": 0.05,
        "price": {"input": 1.0, "output": 2.0}})
    out, preds = tmp_path / "run", tmp_path / "preds.jsonl"
    args = ["run", str(TASK), "--agent", "llm", "--model", "scripted-model", "-o", str(out),
            "--run-id", rid("llm-cli")]
    with ScriptedEndpoint(script) as server:
        result = cli.invoke(app, [*args, "--base-url", server.url, "--agent-config", str(config),
                                  "--predictions-out", str(preds)])
    assert result.exit_code == 0, result.output
    [record] = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert record["outcome"] == "resolved" and record["steps"] == 4
    assert record["model"] == "scripted-model" and record["image_tag"].startswith("bashenv/task-")
    assert record["tokens"] == {"prompt": 480, "completion": 120, "total": 600}
    assert abs(record["cost"] - 4 * (120 * 1.0 + 30 * 2.0) / 1e6) < 1e-12
    assert "sorted(_check(intervals))" in record["model_patch"]
    assert len(record["resolved_commit"]) == 40 and record["started_at"].endswith("Z")
    assert server.requests[0]["tools"][0]["function"]["name"] == "bash"

    header, steps, end = read_trajectory(out / record["trajectory"])
    assert header["task_id"] == TASK.name and header["model"] == "scripted-model"
    assert steps[0]["action"] == "ls" and steps[-1]["action"] == "submit"
    assert steps[0]["policy"]["retries"] == 2  # the 429 and the timeout
    assert [m["role"] for m in steps[0]["policy"]["messages"]][:3] == ["system", "user", "assistant"]
    assert steps[1]["policy"]["messages"][0]["role"] == "tool"  # `ls`'s output, as the model saw it
    assert all(s["policy"]["usage"]["total"] == 150 for s in steps)
    assert end is not None and end["outcome"] == "resolved" and end["verdict"]["resolved"]
    cast = (out / record["cast"]).read_text().splitlines()
    assert json.loads(cast[0])["version"] == 2
    events = [json.loads(line) for line in cast[1:]]
    assert any(e[1] == "o" and e[2].endswith("$\x1b[0m ls\r\n") for e in events)
    assert [e[0] for e in events] == sorted(e[0] for e in events)
    [prediction] = [json.loads(line) for line in preds.read_text().splitlines()]
    assert prediction == {"instance_id": TASK.name, "model_name_or_path": "scripted-model",
                          "model_patch": record["model_patch"]}
    assert (out / "predictions.jsonl").read_text() == preds.read_text()

    with ScriptedEndpoint([]) as server:  # same settings: nothing runs
        again = cli.invoke(app, [*args, "--base-url", server.url, "--agent-config", str(config)])
    assert again.exit_code == 0 and not server.requests
    assert "re-used 1 earlier result(s); ran 0" in again.output

    prompts = {"prompts": {"system": "You fix bugs. One bash command per reply."}}
    changed = _write(tmp_path / "changed.yaml", {**yaml.safe_load(config.read_text()), **prompts})
    with ScriptedEndpoint([submit()]) as server:
        rerun = cli.invoke(app, [*args, "--base-url", server.url, "--agent-config", str(changed)])
    assert rerun.exit_code == 0, rerun.output
    assert "ran 1 (1 agent configuration changed)" in rerun.output
    assert server.requests[0]["messages"][0]["content"].startswith("You fix bugs.")


def test_plain_text_replies_format_errors_and_context_overflow(tmp_path):
    """Text mode: no block, then two blocks get the format-error prompt; a long output is cut
    to head and tail; the endpoint's context-length error trims the history and the episode
    goes on to a verdict."""

    def after_format_errors(body: dict) -> dict:
        assert "needs exactly one" in body["messages"][-1]["content"]
        return text("Counting.\n```bash\necho note > NOTES.txt && seq 1 5000\n```")

    def after_trim(body: dict) -> dict:
        assert any("earlier messages were removed" in str(m.get("content"))
                   for m in body["messages"])
        return text("Done.\n```bash\nsubmit\n```")

    script = [text("Let me think about it."), text("```bash\nls\n```\nand\n```bash\npwd\n```"),
              after_format_errors, error(400, "This model's maximum context length is 300 tokens"),
              after_trim]
    with ScriptedEndpoint(script) as server:
        outcome = bashenv.run(str(TASK), "llm", output=tmp_path / "run", run_id=rid("llm-text"),
                              agent_config={"model": "m", "base_url": server.url, "tools": "text",
                                            "context": {"observation_chars": 2000}})
    [record] = outcome.records
    assert record["outcome"] == "unresolved" and record["steps"] == 2, record
    assert "tools" not in server.requests[0]
    observed = server.requests[3]["messages"][-1]["content"]
    assert "characters cut" in observed and len(observed) < 2300 and "\n5000\n" in observed
    _, steps, _ = read_trajectory(outcome.results.parent / record["trajectory"])
    assert steps[0]["action"] == "echo note > NOTES.txt && seq 1 5000"
    assert steps[0]["policy"]["format_errors"] == 2
    assert "new file mode" in record["model_patch"] and "+++ b/NOTES.txt" in record["model_patch"]
    assert steps[1]["action"] == "submit" and steps[1]["policy"]["trimmed"] >= 2
    assert len(server.requests[4]["messages"]) < len(server.requests[3]["messages"])


def test_an_endpoint_that_never_answers_is_an_infrastructure_error(tmp_path):
    with ScriptedEndpoint([hang(4), hang(4)]) as server:
        outcome = bashenv.run(str(TASK), "llm", output=tmp_path / "run", run_id=rid("llm-hang"),
                              infra_retries=0,
                              agent_config={"model": "m", "base_url": server.url,
                                            "request_timeout": 1, "retries": 1, "backoff": 0})
    [record] = outcome.records
    assert record["outcome"] == "infra_error" and "timed out" in record["error"].lower(), record
    assert len(server.requests) == 2


def test_endpoint_without_tools_falls_back_to_text_and_the_step_budget_ends_the_episode(tmp_path):
    """An endpoint that rejects `tools` gets plain-text requests from then on; the model is
    told what budget is left, and the agent submits when the step budget is spent."""
    script = [error(400, "this model does not support tools"), text("```bash\nls\n```"),
              text("```bash\npwd\n```")]
    with ScriptedEndpoint(script) as server:
        outcome = bashenv.run(str(TASK), "llm", output=tmp_path / "run", run_id=rid("llm-budget"),
                              agent_config={"model": "m", "base_url": server.url,
                                            "budgets": {"steps": 2}})
    [record] = outcome.records
    assert record["outcome"] == "unresolved" and record["truncation"] == "budget:steps", record
    assert record["steps"] == 3 and len(server.requests) == 3  # ls, pwd, then submit unasked
    assert "tools" in server.requests[0] and "tools" not in server.requests[1]
    assert "fenced block" in server.requests[1]["messages"][0]["content"]
    assert "Budget for this task: 2 steps" in server.requests[1]["messages"][1]["content"]
    assert "Left: 1 steps" in server.requests[2]["messages"][-1]["content"]
