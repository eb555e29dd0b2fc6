"""`bashenv report`: one static, self-contained HTML page for a run directory.

Everything an agent produced (outputs, diffs, task ids from a task file, model replies) is
untrusted: the page is rendered by Jinja2 with autoescaping, terminal output is reduced to
plain text, and a Content-Security-Policy lets only this page's own scripts (by hash) run
and nothing be fetched. The terminal player is asciinema-player 2.6 from the optional
`xstatic-asciinema-player` package, inlined when installed; without it (or for an episode
without a cast) the transcript alone is shown.
"""

from __future__ import annotations

import base64
import hashlib
import importlib
import json
import math
import os
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import quote

from bashenv.errors import BashenvError
from bashenv.report.plots import histogram
from bashenv.report.rundir import RESULTS_NAME, Episode, Run, load_run, read_trajectory
from bashenv.report.terminal import Cast, plain_text, read_cast

# A page must stay loadable for a run of hundreds of episodes; the full data is always
# in the linked trajectory and cast files.
OUTPUT_CHARS = 4000  # per step output in the transcript: head and tail kept
TEXT_CHARS = 60000  # per diff, log, issue or model message
PAGE_OUTPUT_CHARS = 8_000_000  # step outputs per page; later steps show their command only
PLAYER_CAST_BYTES = 2_000_000  # larger casts get only the transcript
PAGE_PLAYER_BYTES = 10_000_000  # recordings embedded per page; later episodes link theirs
PLAYERS_OPEN = 10  # players started with the page; the others start when opened
INFRA_ERROR = "infra_error"

# Starts one player per recording; the recording is a base64 asciicast v1 in a data
# attribute (the 2.6 player reads v1 reliably from a data: URL, which CSP allows to fetch).
PLAYER_INIT = """function startPlayer(el) {
  if (el.dataset.started) return;
  el.dataset.started = '1';
  asciinema.player.js.CreatePlayer(el, 'data:application/json;base64,' + el.dataset.cast,
    {preload: true, autoPlay: false, fontSize: 'small', poster: el.dataset.poster});
}
document.querySelectorAll('.cast-player').forEach(function (el) {
  var box = el.closest('details');
  if (box.open) startPlayer(el);
  box.addEventListener('toggle', function () { if (box.open) startPlayer(el); });
});"""


def write_report(run_dir: str | Path, output: str | Path | None = None, *,
                 player: bool = True) -> Path:
    """Render the report of `run_dir` to `output` (default RUN_DIR/report.html; for a
    results file X.jsonl other than results.jsonl, RUN_DIR is X/, as `bashenv run` has it)."""
    run = load_run(run_dir)
    home = run.base if run.results.name == RESULTS_NAME else run.results.with_suffix("")
    target = Path(output) if output is not None else home / "report.html"
    page = render(run, target.parent, player=player)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(page, encoding="utf-8")
    return target


def render(run: Run, page_dir: Path, *, player: bool = True) -> str:
    from jinja2 import Environment, StrictUndefined
    from markupsafe import Markup

    assets = _player_assets() if player else None
    budget = PageBudget(PAGE_OUTPUT_CHARS, PAGE_PLAYER_BYTES if assets is not None else 0)
    episodes = [_episode_view(index, episode, page_dir, budget)
                for index, episode in enumerate(run.episodes, start=1)]
    scripts: dict[str, Any] = {}
    if assets is not None and any(e["player_data"] for e in episodes):
        js, css = assets
        scripts = {"player_js": Markup(js), "player_css": Markup(css),
                   "player_init": Markup(PLAYER_INIT)}
    hashes = " ".join(f"'sha256-{base64.b64encode(hashlib.sha256(s.encode()).digest()).decode()}'"
                      for key, s in scripts.items() if key != "player_css") or "'none'"
    template = resources.files("bashenv.report").joinpath("templates/report.html.j2").read_text("utf-8")
    env = Environment(autoescape=True, undefined=StrictUndefined, keep_trailing_newline=True)
    records = [e.record for e in run.episodes]
    return env.from_string(template).render(
        title=str(run.base.resolve().name or run.base), results=str(run.results),
        written=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        summaries=_summaries(records), total=_summary(records, "all"),
        plots=[Markup(p) for p in _plots(records)], episodes=episodes,
        script_hashes=Markup(hashes), player_js=scripts.get("player_js"),
        player_css=scripts.get("player_css"), player_init=scripts.get("player_init"))


@dataclass
class PageBudget:
    """What is left of the page's room for step outputs and embedded recordings."""

    output_chars: int
    player_bytes: int

    def output(self, text: str) -> str:
        if self.output_chars <= 0:
            return "[output left out to keep the page light: see the trajectory]" if text else ""
        self.output_chars -= len(text)
        return text


def _summary(records: list[dict[str, Any]], agent: str) -> dict[str, Any]:
    counted = [r for r in records if r.get("outcome") != INFRA_ERROR]
    resolved = sum(bool(r.get("resolved")) for r in counted)
    rate = f"{100 * resolved / len(counted):.1f}%" if counted else "n/a"
    outcomes = sorted(Counter(str(r.get("outcome")) for r in records).items())
    return {"agent": agent, "counted": len(counted), "resolved": resolved, "rate": rate,
            "outcomes": outcomes, "infra": len(records) - len(counted)}


def _summaries(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    agents = sorted({str(r.get("agent", "")) for r in records})
    return [_summary([r for r in records if str(r.get("agent", "")) == a], a) for a in agents]


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _plots(records: list[dict[str, Any]]) -> list[str]:
    def values(pick: Any) -> list[float]:
        return [v for v in (_number(pick(r)) for r in records) if v is not None]

    return [histogram(values(lambda r: r.get("steps")), "steps per episode"),
            histogram(values(lambda r: _dict(r.get("tokens")).get("total")), "tokens per episode"),
            histogram(values(lambda r: r.get("cost")), "cost per episode", " $"),
            histogram(values(lambda r: r.get("seconds")), "duration per episode", " s")]


def _cut(text: Any, limit: int) -> str:
    text = text if isinstance(text, str) else json.dumps(text, ensure_ascii=False)
    if len(text) <= limit:
        return text
    half = limit // 2
    cut = f"\n[... {len(text) - limit} chars cut; the full text is in the trajectory ...]\n"
    return text[:half] + cut + text[-half:]


def _href(path: Path | None, page_dir: Path) -> str | None:
    if path is None:
        return None
    return quote(Path(os.path.relpath(path, page_dir.resolve())).as_posix())


def _tests(verdict: dict[str, Any]) -> list[tuple[str, str, str]]:
    rows = []
    for kind, key in (("FAIL_TO_PASS", "fail_to_pass"), ("PASS_TO_PASS", "pass_to_pass")):
        tests = verdict.get(key)
        if isinstance(tests, dict):
            rows += [(kind, str(test), str(status)) for test, status in tests.items()]
    return rows


def _passed(verdict: dict[str, Any], key: str) -> str:
    tests = verdict.get(key)
    if not isinstance(tests, dict) or not tests:
        return "-"
    return f"{sum(s == 'passed' for s in tests.values())}/{len(tests)}"


def _episode_view(index: int, episode: Episode, page_dir: Path, budget: PageBudget) -> dict[str, Any]:
    r = episode.record
    verdict = _dict(r.get("verdict"))
    tokens = _dict(r.get("tokens")).get("total")
    cost = _number(r.get("cost"))
    view: dict[str, Any] = {
        "index": index, "task_id": episode.task_id, "agent": str(r.get("agent", "")),
        "outcome": str(r.get("outcome", "")), "resolved": bool(r.get("resolved")),
        "reward": r.get("reward", ""), "steps": r.get("steps", ""),
        "tokens": tokens if tokens is not None else "-",
        "cost": f"{cost:.4f}" if cost is not None else "-",
        "seconds": f"{_number(r.get('seconds')) or 0:.1f}",
        "f2p_summary": _passed(verdict, "fail_to_pass"), "p2p_summary": _passed(verdict, "pass_to_pass"),
        "tests": _tests(verdict), "note": verdict.get("note"),
        "error": _cut(r["error"], TEXT_CHARS) if r.get("error") else None,
        "traceback": _cut(r["traceback"], TEXT_CHARS) if r.get("traceback") else None,
        "model_patch": _cut(r.get("model_patch") or "", TEXT_CHARS),
        "verdict_log": _cut(verdict.get("log") or "", TEXT_CHARS),
        "started_at": r.get("started_at"), "model": r.get("model"),
        "truncation": r.get("truncation"), "attempts": r.get("attempts", 1),
        "trajectory_href": _href(episode.trajectory, page_dir),
        "cast_href": _href(episode.cast, page_dir),
        "issue": None, "transcript": [], "transcript_source": "none", "player_data": None,
        "player_poster": "", "player_open": False, "missing": [name for name in ("trajectory", "cast")
                                           if r.get(name) and getattr(episode, name) is None],
    }
    cast: Cast | None = None
    if episode.cast is not None:
        try:
            cast = read_cast(episode.cast)
        except BashenvError:
            cast = None  # unreadable recording: the trajectory still tells the story
    if episode.trajectory is not None:
        try:
            trajectory = read_trajectory(episode.trajectory)
            view["issue"] = _cut(trajectory.header.get("issue") or "", TEXT_CHARS) or None
            view["transcript"] = [_step_view(s, budget) for s in trajectory.steps]
            view["transcript_source"] = "trajectory"
        except BashenvError:
            pass
    if view["transcript_source"] == "none" and cast is not None:
        view["transcript"] = [{"action": "(terminal output of the recording)",
                               "output": budget.output(_cut(cast.output(), OUTPUT_CHARS * 4)),
                               "messages": [], "meta": f"{cast.duration:.1f}s recorded"}]
        view["transcript_source"] = "cast"
    if cast is not None and episode.cast is not None \
            and episode.cast.stat().st_size <= min(PLAYER_CAST_BYTES, budget.player_bytes):
        view["player_data"] = base64.b64encode(_asciicast_v1(cast).encode()).decode()
        view["player_open"] = index <= PLAYERS_OPEN
        budget.player_bytes -= len(view["player_data"])
        minutes, seconds = divmod(math.ceil(cast.duration), 60)  # poster: the last frame
        view["player_poster"] = f"npt:{minutes}:{seconds:02d}"
    return view


def _step_view(step: dict[str, Any], budget: PageBudget) -> dict[str, Any]:
    meta = [f"step {step.get('step', '?')}", f"exit {step.get('exit_code', '?')}"]
    if step.get("timed_out"):
        meta.append("timed out")
    if step.get("output_truncated"):
        meta.append("output truncated by the environment")
    for key, label in (("t", "at"), ("env_seconds", "env"), ("agent_seconds", "agent")):
        if _number(step.get(key)) is not None:
            meta.append(f"{label} {float(step[key]):.2f}s")
    policy = _dict(step.get("policy"))
    if policy.get("policy_version") is not None:
        meta.append(f"policy version {policy['policy_version']}")
    usage = _dict(policy.get("usage"))
    if _number(usage.get("total")) is not None:
        meta.append(f"{usage['total']} tokens")
    for key, label in (("retries", "retries"), ("format_errors", "format errors"),
                       ("trimmed", "messages trimmed")):
        if _number(policy.get(key)):
            meta.append(f"{label} {policy[key]}")
    messages = []
    for message in policy.get("messages") or []:
        if isinstance(message, dict):
            content = message.get("content") or message.get("tool_calls") or ""
            messages.append((str(message.get("role", "message")), _cut(content, TEXT_CHARS)))
    return {"action": _cut(str(step.get("action", "")), TEXT_CHARS),
            "output": budget.output(_cut(plain_text(str(step.get("output", ""))), OUTPUT_CHARS)),
            "messages": messages, "meta": " · ".join(meta)}


def _asciicast_v1(cast: Cast) -> str:
    """The recording as asciicast v1 (delays between output events), for the 2.6 player."""
    stdout, previous = [], 0.0
    for at, code, data in cast.events:
        if code == "o":
            stdout.append([round(max(0.0, at - previous), 6), data])
            previous = at
    return json.dumps({"version": 1, "width": int(cast.header.get("width") or 80),
                       "height": int(cast.header.get("height") or 24),
                       "duration": cast.duration, "stdout": stdout})


def _player_assets() -> tuple[str, str] | None:
    """asciinema-player's script and style from xstatic-asciinema-player, if installed."""
    try:
        asciinema_player = importlib.import_module("xstatic.pkg.asciinema_player")
    except ImportError:
        return None
    data = Path(asciinema_player.BASE_DIR)
    js = (data / "asciinema-player.js").read_text(encoding="utf-8")
    css = (data / "asciinema-player.css").read_text(encoding="utf-8")
    # "<!--" inside a script element changes how HTML parsers find its end; in the player
    # it occurs only inside string literals, where "<\!--" is the same string.
    return js.replace("<!--", "<\\!--").replace("</script", "<\\/script"), css
