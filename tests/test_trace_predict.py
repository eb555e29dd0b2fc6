"""TracePredict-v0 without an engine: episodes from a dataset of traces the tracer wrote
(here run on the host), scoring, honest rewards and gymnasium's env checker. The
sandboxed path (files and tasks traced in boxes) is in tests/test_trace.py."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env

import bashenv  # noqa: F401  (registers TracePredict-v0)
from bashenv.errors import BashenvError
from bashenv.trace import tracer
from bashenv.trace.predict import episodes_from_events, parse_state, score_state
from bashenv.worlds.trace_predict import TracePredictEnv

USES_ENGINE = False

PROGRAM = '''\
def collatz_steps(n):
    steps = 0
    while n != 1:
        if n % 2:
            n = 3 * n + 1
        else:
            n //= 2
        steps += 1
    return steps


def pairs(words):
    seen = {}
    for w in words:
        seen[w] = len(w)
    return seen


collatz_steps(6)
pairs(["ab", "c", "ab"])
'''


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """A one-record dataset in the format `bashenv traces` writes."""
    work = tmp_path_factory.mktemp("prog")
    (work / "prog.py").write_text(PROGRAM)
    done = subprocess.run([sys.executable, tracer.__file__, "prog.py"], cwd=work,
                          capture_output=True, text=True, timeout=60, check=True)
    *events, end = [json.loads(x) for x in done.stdout.splitlines()]
    record = {"key": "k", "task_id": "t", "test_id": "prog.py", "side": "before",
              "trace": events, "functions": end["functions"], "outcome": end["outcome"]}
    path = work / "traces.jsonl"
    path.write_text(json.dumps(record) + "\n")
    return path


def truth(dataset: Path, function: str) -> tuple[list[dict], list[dict]]:
    """The function's (state before, changes after) per executed line, read straight from
    the events (independently of bashenv.trace.predict)."""
    events = json.loads(dataset.read_text())["trace"]
    mine = [e for e in events if e["function"] == function]
    befores, changes, state = [], [], {}
    for event, nxt in itertools.pairwise(mine):
        state.update(event["locals"])
        if event["event"] == "line":
            befores.append(dict(state))
            changes.append(nxt["locals"])
    return befores, changes


def play(env: TracePredictEnv, guess) -> float:
    obs, _ = env.reset(seed=0, options={"function": FUNCTION})
    total, done, k = 0.0, False, 0
    while not done:
        obs, reward, done, truncated, info = env.step(guess(k, obs))
        total += reward
        k += 1
    return total


FUNCTION = "collatz_steps"


def test_an_oracle_scores_one_and_a_constant_guess_the_share_it_matches(dataset):
    _, changes = truth(dataset, FUNCTION)
    oracle = [tracer.state_text(c) for c in changes]
    for partial in (True, False):
        env = TracePredictEnv(dataset=dataset, partial_credit=partial)
        assert play(env, lambda k, obs: oracle[k]) == pytest.approx(1.0)
        empty_share = sum(not c for c in changes) / len(changes)
        assert 0 < empty_share < 1
        assert play(env, lambda k, obs: "{}") == pytest.approx(empty_share)
        assert play(env, lambda k, obs: "not a state") == 0.0


def test_whole_trace_mode_scores_the_states_in_order(dataset):
    _, changes = truth(dataset, FUNCTION)
    env = TracePredictEnv(dataset=dataset, mode="trace")
    obs, info = env.reset(seed=0, options={"function": FUNCTION})
    assert obs["trace"].count("\n---\n") == len(changes) == info["steps"]
    answer = "\n".join(tracer.state_text(c) for c in changes)
    *_, reward, done, _, info = env.step(answer)
    assert done and reward == pytest.approx(1.0) and all(info["exact"])
    env.reset(seed=0, options={"function": FUNCTION})
    half = "\n".join(tracer.state_text(c) for c in changes[: len(changes) // 2])
    *_, reward, _, _, info = env.step(half)  # missing states are wrong
    right = sum(info["credit"]) / len(changes)
    assert reward == pytest.approx(right) and right < 1


def test_the_observation_shows_source_arguments_and_the_trace_so_far(dataset):
    env = gym.make("TracePredict-v0", dataset=dataset)
    obs, info = env.reset(seed=0, options={"function": "pairs"})
    assert obs["source"].startswith("def pairs(words):")
    assert obs["call"] == "pairs(words=['ab', 'c', 'ab'])"
    assert obs["line"] == "seen = {}" and obs["trace"].endswith("---\nseen = {}")
    obs, reward, *_ = env.step("{seen: {}}")
    assert reward == pytest.approx(1 / info["steps"])
    assert "---\nseen = {}\n{seen: {}}\n---\nfor w in words:" in obs["trace"]
    env.close()


def test_partial_credit_is_the_share_of_variables_in_play():
    before = {"a": "1", "b": "2", "c": "3"}
    assert score_state("{a: 5, b: 7}", {"a": "5", "b": "6"}, before) == (False, 0.5)
    assert score_state("{a: 5, c: 3}", {"a": "5"}, before) == (True, 1.0)  # c unchanged
    assert score_state("{a: 5, d: 0}", {"a": "5"}, before) == (False, 0.5)  # d did not change
    assert score_state('{"a": "5"}', {"a": "5"}, before) == (True, 1.0)  # JSON is fine too
    assert score_state("{}", {}, before) == (True, 1.0)
    assert score_state("garbage", {}, before) == (False, 0.0)


def test_states_parse_with_commas_inside_values():
    assert parse_state("{s: 'a, b', t: (1, 2), u: {1: [3, 4]}}") == {
        "s": "'a, b'", "t": "(1, 2)", "u": "{1: [3, 4]}"}
    assert parse_state("{x: 'it''s'}") == {"x": "'it''s'"}
    assert parse_state("x = 5") is None


def test_episodes_are_one_per_function_call(dataset):
    record = json.loads(dataset.read_text())
    episodes = episodes_from_events(record["trace"], record["functions"])
    assert [e.function for e in episodes] == ["collatz_steps", "pairs"]
    assert episodes[0].returned == "8" and episodes[1].returned == "{'ab': 2, 'c': 1}"


def test_env_checker_passes(dataset):
    env = gym.make("TracePredict-v0", dataset=dataset, render_mode="ansi")
    check_env(env.unwrapped, skip_render_check=False)


def test_bad_arguments_are_named(dataset, tmp_path):
    with pytest.raises(BashenvError, match="mode"):
        TracePredictEnv(dataset=dataset, mode="guess")
    with pytest.raises(BashenvError, match="no such Python file"):
        TracePredictEnv(files=[tmp_path / "missing.py"])
    with pytest.raises(BashenvError, match="no trace dataset"):
        TracePredictEnv(dataset=tmp_path / "nothing")
    env = TracePredictEnv(dataset=dataset)
    with pytest.raises(BashenvError, match="reset"):
        env.step("{}")
    with pytest.raises(BashenvError, match=r"options\['source'\] must be an index"):
        env.reset(options={"source": 10**6})
