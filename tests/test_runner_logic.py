"""Runner and agent logic that needs no engine: run directories, resume plans, predictions,
trajectory files, the llm agent's settings and text handling."""

from __future__ import annotations

import json

import pytest

from bashenv.agents import config_hash, make_agent
from bashenv.agents.llm import FENCED, LLMAgent, head_tail
from bashenv.errors import BashenvError
from bashenv.runner import ResultsFile, read_trajectory, run_paths, write_predictions
from bashenv.runner.trajectory import TrajectoryWriter

USES_ENGINE = False


def test_run_paths(tmp_path):
    assert run_paths(tmp_path / "run") == (tmp_path / "run" / "results.jsonl", tmp_path / "run")
    assert run_paths(tmp_path / "run" / "results.jsonl") == (tmp_path / "run" / "results.jsonl",
                                                             tmp_path / "run")
    assert run_paths(tmp_path / "gold.jsonl") == (tmp_path / "gold.jsonl", tmp_path / "gold")


def _record(task: str, outcome: str = "unresolved", th: str | None = "t1",
            ch: str | None = "c1", **more) -> dict:
    return {"task_id": task, "agent": "a", "outcome": outcome, "task_hash": th,
            "agent_config_hash": ch, **more}


def test_plan_reuses_only_matching_content_and_says_why_others_run(tmp_path):
    store = ResultsFile(tmp_path / "r.jsonl")
    for record in [_record("same"), _record("infra", "infra_error"), _record("edited", th="old"),
                   _record("reconfigured", ch="c0"), _record("legacy", th=None, ch=None),
                   _record("back", n=1), _record("back", ch="c2"), _record("other-agent") | {"agent": "b"}]:
        store.append(record)
    hashes = {t: "t1" for t in ("same", "infra", "edited", "reconfigured", "legacy", "new",
                                "back", "other-agent")}
    plan = store.plan("a", "c1", hashes)
    assert set(plan.reused) == {"same", "back"} and plan.reused["back"]["n"] == 1
    assert plan.reasons == {"infra": "infrastructure error last time", "edited": "task changed",
                            "reconfigured": "agent configuration changed",
                            "legacy": "earlier result has no content keys (older format)",
                            "new": "no earlier result", "other-agent": "no earlier result"}
    assert plan.todo == list(plan.reasons)
    assert plan.why()["no earlier result"] == 2


def test_predictions_leave_out_infrastructure_errors(tmp_path):
    records = [_record("x", model_patch="diff", model="m"), _record("y", "infra_error"),
               _record("z", "agent_error")]
    assert write_predictions(records, tmp_path / "p.jsonl") == 2
    lines = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert lines == [{"instance_id": "x", "model_name_or_path": "m", "model_patch": "diff"},
                     {"instance_id": "z", "model_name_or_path": "a", "model_patch": ""}]


def test_trajectory_and_cast_round_trip(tmp_path):
    writer = TrajectoryWriter(tmp_path, "ep")
    writer.header({"task_id": "t", "agent": "a", "intro": "Repository: /repo"})
    osc52 = "\x1b]52;c;ZXZpbA==\x07"  # an agent's attempt to write the viewer's clipboard
    obs = {"output": f"line 1\n{osc52}line 2\n", "exit_code": 3, "timed_out": 1,
           "output_truncated": 0}
    writer.step(1, "make test", obs, 0.5, 0.1, 0.25, {"usage": {"total": 7}})
    writer.end({"outcome": "unresolved", "steps": 1, "model_patch": ""})
    writer.close()
    with open(writer.path, "a") as handle:
        handle.write('{"type": "step", "step": 2, "act')  # a torn line from a crash
    header, steps, end = read_trajectory(writer.path)
    assert header["format"] == "bashenv-trajectory/1" and header["task_id"] == "t"
    [step] = steps
    assert step["output"] == obs["output"]  # the record keeps the bytes; the cast does not
    assert step["exit_code"] == 3 and step["timed_out"] is True and step["policy"]["usage"]["total"] == 7
    assert end is not None and end["outcome"] == "unresolved"
    cast = writer.cast_path.read_text().splitlines()
    assert json.loads(cast[0])["version"] == 2
    events = [json.loads(line) for line in cast[1:]]
    assert [e[0] for e in events] == sorted(e[0] for e in events)
    assert events[2][1:] == ["o", "line 1\r\nline 2\r\n"] and events[2][0] == pytest.approx(0.75)
    assert "make test" in events[1][2]


def test_llm_settings_are_checked_and_only_result_settings_are_the_resume_key():
    with pytest.raises(BashenvError, match="unknown setting 'context.max_tokenz'"):
        LLMAgent(model="m", context={"max_tokenz": 1})
    with pytest.raises(BashenvError, match="prompt template error"):
        LLMAgent(model="m", prompts={"system": "{% if %}"})
    with pytest.raises(BashenvError, match="needs a model"):
        make_agent("llm")
    one = LLMAgent(model="m", base_url="http://127.0.0.1:1/v1", retries=1)
    two = LLMAgent(model="m", base_url="http://127.0.0.1:2/v1", retries=9)
    assert config_hash("llm", one.config()) == config_hash("llm", two.config())
    hotter = LLMAgent(model="m", temperature=0.7)
    assert config_hash("llm", hotter.config()) != config_hash("llm", one.config())


def test_long_output_keeps_head_and_tail_and_blocks_are_found():
    text = "".join(f"{i}\n" for i in range(10000))
    cut = head_tail(text, 1000)
    assert cut.startswith("0\n1\n") and cut.endswith("9998\n9999\n") and "characters cut" in cut
    assert len(cut) < 1100 and head_tail("short", 1000) == "short"
    assert FENCED.findall("x\n```bash\nls -la\n```\ny") == ["ls -la\n"]
    assert FENCED.findall("```\npwd\n```\n```sh\nid\n```") == ["pwd\n", "id\n"]
    assert FENCED.findall("run `ls` please") == []


def test_history_is_trimmed_by_whole_turns_before_it_overflows():
    """Proactive trimming: with a small context the oldest turns go (system and instance
    stay, a note says how many went), and every tool answer still follows its call."""
    from bashenv.task import load_tasks

    from .conftest import TASKS_DIR
    from .llm_server import ScriptedEndpoint, bash

    task = load_tasks(TASKS_DIR / "intervals-merge-unsorted")[0]
    with ScriptedEndpoint([bash(f"cat file{i}") for i in range(8)]) as server:
        agent = LLMAgent(model="m", base_url=server.url, max_output_tokens=500,
                         context={"max_tokens": 3000, "observation_chars": 4000})
        obs = {"output": "intro", "exit_code": -1, "timed_out": 0}
        agent.reset(task, obs)
        for i in range(8):
            assert agent.act({**obs, "output": f"{i}" * 3900, "exit_code": 0}) == f"cat file{i}"
    sizes = [sum(len(m.get("content") or "") for m in r["messages"]) for r in server.requests]
    assert max(sizes) < 2500 * 4  # the budget (3000 - 500 tokens) in ~4-character tokens
    last = server.requests[-1]["messages"]
    assert [m["role"] for m in last[:2]] == ["system", "user"] and "<issue>" in last[1]["content"]
    assert "earlier messages were removed" in last[2]["content"]
    for i, message in enumerate(last):
        if message["role"] == "tool":
            calls = [c["id"] for c in last[i - 1].get("tool_calls", [])]
            assert message["tool_call_id"] in calls
    assert agent._trimmed > 0 and agent._chars == sum(agent._chars_of(m) for m in agent.messages)


@pytest.mark.parametrize("separator", ["\u2028", "\u0085", "\x0c", "\x1c"])
def test_records_holding_line_separators_other_than_newline_are_read_whole(tmp_path, separator):
    """JSON leaves U+2028, U+0085 and friends raw; str.splitlines() would cut the record
    there and drop it (a result re-run forever, a step missing from a trajectory)."""
    from bashenv.report.terminal import read_cast

    results = ResultsFile(tmp_path / "results.jsonl")
    results.append(_record("x", model_patch=f"+a{separator}b\n"))
    assert [r["model_patch"] for r in results.load()] == [f"+a{separator}b\n"]
    writer = TrajectoryWriter(tmp_path, "ep")
    writer.header({"task_id": "t", "agent": "a", "intro": f"in{separator}tro"})
    writer.step(1, "echo", {"output": f"x{separator}y\n", "exit_code": 0, "timed_out": 0,
                            "output_truncated": 0}, 0.1, 0.1, 0.1, None)
    writer.end({"outcome": "unresolved", "steps": 1, "model_patch": ""})
    writer.close()
    header, [step], end = read_trajectory(writer.path)
    assert header["intro"] == f"in{separator}tro" and step["output"] == f"x{separator}y\n"
    assert end is not None
    written = writer.cast_path.read_bytes().count(b"\n") - 1  # event lines after the header
    assert len(read_cast(writer.cast_path).events) == written
