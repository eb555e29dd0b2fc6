"""`bashenv report` and `bashenv show` on a run made for real (`bashenv run`: gold and a
replay agent whose output carries HTML and terminal escapes), the page checked in Debian's
headless chromium; plus the parsing, cleaning and escaping on their own."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
from contextlib import suppress
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from bashenv.errors import BashenvError
from bashenv.report import load_run, plain_text, read_cast, terminal_safe, write_report
from bashenv.report.replay import replay

from .conftest import TASKS_DIR, rid
from .llm_server import ScriptedEndpoint, bash, submit

BASHENV = [sys.executable, "-m", "bashenv.cli"]
# What an agent might print to attack the page: each would mark <body> if it ever ran.
INJECTED = "<script>document.body.dataset.pwned=1</script><img src=x onerror=document.body.dataset.pwned=2>"
OSC_TITLE = "\x1b]0;owned\x07"


# -- a DOM, as the browser left it -----------------------------------------------------------

class Node:
    def __init__(self, tag: str, attrs: dict[str, str], parent: Node | None) -> None:
        self.tag, self.attrs, self.parent = tag, attrs, parent
        self.children: list[Node | str] = []

    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)

    def all(self, tag: str | None = None, cls: str | None = None) -> list[Node]:
        found = []
        for child in self.children:
            if isinstance(child, Node):
                if (tag is None or child.tag == tag) and \
                        (cls is None or cls in child.attrs.get("class", "").split()):
                    found.append(child)
                found += child.all(tag, cls)
        return found

    def by_id(self, ident: str) -> Node:
        [node] = [n for n in self.all() if n.attrs.get("id") == ident]
        return node


VOID = {"meta", "link", "br", "img", "input", "hr", "col", "area", "base", "source", "wbr"}


class _Builder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = self.node = Node("#document", {}, None)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs}, self.node)
        self.node.children.append(node)
        if tag not in VOID:
            self.node = node

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.node.children.append(Node(tag, {k: v or "" for k, v in attrs}, self.node))

    def handle_endtag(self, tag: str) -> None:
        node: Node | None = self.node
        while node is not None and node.tag != tag:
            node = node.parent
        if node is not None and node.parent is not None:
            self.node = node.parent

    def handle_data(self, data: str) -> None:
        self.node.children.append(data)


def parse(html: str) -> Node:
    builder = _Builder()
    builder.feed(html)
    return builder.root


def browser_dom(page: Path, scratch: Path) -> Node:
    """The page's DOM after chromium ran its scripts (a throw-away profile, killed after)."""
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("chromium is not installed: scripts/bootstrap.sh installs it (apt-get install chromium)")
    profile = scratch / "chromium-profile"
    browser = subprocess.Popen(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         f"--user-data-dir={profile}", "--virtual-time-budget=5000", "--dump-dom", page.as_uri()],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = browser.communicate(timeout=180)
    finally:
        with suppress(ProcessLookupError):  # its helper processes, in its own session
            os.killpg(browser.pid, signal.SIGKILL)
        shutil.rmtree(profile, ignore_errors=True)
    assert browser.returncode == 0 and "</html>" in out, err[-3000:]
    return parse(out)


# -- a real run ------------------------------------------------------------------------------

def bashenv(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([*BASHENV, *args], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "COLUMNS": "200"})
    if check:
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """Gold on the three bundled tasks, a replay agent on one that prints HTML and an OSC
    title escape, then submits unchanged code, and the llm agent (a scripted local endpoint)
    whose reply carries HTML too; all into one run directory."""
    work = tmp_path_factory.mktemp("report")
    run = work / "run"
    replay_file = work / "evil.yaml"
    replay_file.write_text(json.dumps([f"echo '{INJECTED}'", r"printf '\033]0;owned\007done\n'"]))
    bashenv("run", str(TASKS_DIR), "--agent", "gold", "-o", str(run), "--workers", "2",
            "--run-id", rid("report-gold"))
    bashenv("run", str(TASKS_DIR / "textkit-truncate-width"), "--agent", "replay",
            "--replay", str(replay_file), "-o", str(run), "--run-id", rid("report-replay"))
    config = work / "llm.yaml"
    config.write_text(json.dumps({"price": {"input": 1.0, "output": 2.0}}))
    with ScriptedEndpoint([bash("ls", f"Look first. {INJECTED}"), submit()]) as endpoint:
        bashenv("run", str(TASKS_DIR / "intervals-merge-unsorted"), "--agent", "llm", "--model",
                "scripted-model", "--base-url", endpoint.url, "--agent-config", str(config),
                "-o", str(run), "--run-id", rid("report-llm"))
    return run


@pytest.fixture(scope="module")
def page(run_dir: Path) -> Path:
    bashenv("report", str(run_dir), "-o", str(run_dir / "report.html"))
    return run_dir / "report.html"


@pytest.fixture(scope="module")
def dom(page: Path, tmp_path_factory) -> Node:
    return browser_dom(page, tmp_path_factory.mktemp("browser"))


def test_the_browser_shows_the_verdicts_table_and_resolve_rate(dom: Node):
    rows = dom.by_id("verdicts").all("tr", "verdict-row")
    cells = sorted((r.all("td")[0].text(), r.all("td")[1].text(), r.all("td")[2].text()) for r in rows)
    assert cells == [("durations-spaces-case", "gold", "resolved"),
                     ("intervals-merge-unsorted", "gold", "resolved"),
                     ("intervals-merge-unsorted", "llm", "unresolved"),
                     ("textkit-truncate-width", "gold", "resolved"),
                     ("textkit-truncate-width", "replay", "unresolved")]
    assert dom.by_id("resolve-rate").text().strip() == "Resolved 3 of 5 (60.0%)"
    [llm] = [r for r in rows if r.all("td")[1].text() == "llm"]
    assert [c.text() for c in llm.all("td")[5:7]] == ["300", "0.0004"]  # 2 calls, 120+30 each
    plots = dom.by_id("plots").all("svg")
    assert len(plots) == 4 and all(p.all("title") for p in plots)


def test_the_browser_shows_per_test_status_and_transcripts(dom: Node, run_dir: Path):
    episodes = {(s.all("h3")[0].text().split(" · ")[0], s.all("h3")[0].text().split(" · ")[1]): s
                for s in dom.all("section", "episode")}
    gold = episodes[("textkit-truncate-width", "gold")]
    tests = [[c.text() for c in row.all("td")] for row in gold.all("table", "tests")[0].all("tr")[1:]]
    assert ["FAIL_TO_PASS", "tests/test_core.py::test_truncate_never_longer_than_width", "passed"] in tests
    assert {kind for kind, _, _ in tests} == {"FAIL_TO_PASS", "PASS_TO_PASS"}
    commands = [p.text() for p in gold.all("pre", "cmd")]
    assert any(c.startswith("$ git apply") for c in commands) and commands[-1] == "$ submit"
    evil = episodes[("textkit-truncate-width", "replay")]
    outputs = [p.text() for p in evil.all("pre", "output")]
    assert INJECTED + "\n" in outputs  # shown as text, exactly as printed
    assert "done\n" in outputs and not any("\x1b" in o or "owned" in o for o in outputs)
    llm = episodes[("intervals-merge-unsorted", "llm")]
    said = [(d.all("summary")[0].text(), d.all("pre")[0].text()) for d in llm.all("details")
            if d.all("summary")[0].text() == "assistant"]
    assert said and said[0][1].startswith(f"Look first. {INJECTED}")
    assert "150 tokens" in llm.all("div", "step-meta")[0].text()
    # The recording, played by the inlined asciinema-player (its script ran under the CSP).
    for section in (gold, evil, llm):
        [player] = section.all("div", "cast-player")
        assert player.all(cls="asciinema-player-wrapper"), "the player did not render"


def test_agent_output_never_becomes_markup(dom: Node, page: Path):
    assert "pwned" not in " ".join(dom.all("body")[0].attrs)
    assert "data-pwned" not in " ".join(k for n in dom.all() for k in n.attrs)
    assert not dom.all("img")
    scripts = dom.all("script")
    assert len(scripts) == 2 and not any("pwned" in s.text() for s in scripts)  # player + init
    assert dom.all("title")[0].text() == f"bashenv report: {page.parent.name}"


def test_the_page_is_self_contained_and_links_each_trajectory_and_cast(dom: Node, page: Path):
    links = [a.attrs["href"] for a in dom.by_id("verdicts").all("a")]
    files = [h for h in links if not h.startswith("#")]
    assert len(files) == 10  # a trajectory and a cast per episode
    for href in files:
        assert (page.parent / href).is_file(), href
    assert {Path(h).suffix for h in files} == {".jsonl", ".cast"}
    for node in dom.all():
        for name in ("src", "href"):
            assert not node.attrs.get(name, "").startswith(("http:", "https:", "//")), node.attrs
    policy = [m.attrs["content"] for m in dom.all("meta") if m.attrs.get("http-equiv")]
    assert policy and "default-src 'none'" in policy[0]


def test_show_replays_a_trajectory_and_a_cast(run_dir: Path):
    record = next(r for r in load_run(run_dir).episodes if r.record["agent"] == "replay").record
    trajectory = bashenv("show", str(run_dir / record["trajectory"]), "--no-wait").stdout
    assert f"$ echo '{INJECTED}'" in trajectory and INJECTED in trajectory
    assert OSC_TITLE not in trajectory and "\x1b]" not in trajectory
    assert "done\n" in trajectory and "# verdict: unresolved" in trajectory
    cast = bashenv("show", str(run_dir / record["cast"]), "--no-wait").stdout
    assert f"echo '{INJECTED}'" in cast and "done" in cast and OSC_TITLE not in cast
    by_task = bashenv("show", str(run_dir), "--task", "textkit-truncate-width", "--agent", "replay",
                      "--no-wait").stdout
    assert by_task == trajectory
    ambiguous = bashenv("show", str(run_dir), "--task", "textkit-truncate-width", check=False)
    assert ambiguous.returncode == 2 and "several episodes" in ambiguous.stderr
    assert "textkit-truncate-width (replay)" in ambiguous.stderr.replace("\n", "")
    missing = bashenv("show", str(run_dir / "nope.jsonl"), check=False)
    assert missing.returncode == 2 and "nope.jsonl: no such trajectory or cast file" in missing.stderr


# -- the parts on their own ------------------------------------------------------------------

def test_terminal_output_is_cleaned():
    text = "a\x1b[31mred\x1b[0m" + OSC_TITLE + "\x1b]52;c;Zm9v\x1b\\b\x1b[2J\x07c\x9b2Jd\r\ne"
    assert plain_text(text) == "aredbcd\ne"
    assert terminal_safe(text) == "a\x1b[31mred\x1b[0mbcd\r\ne"


def _write_cast(path: Path, events: list[Any]) -> Path:
    lines = [json.dumps({"version": 2, "width": 80, "height": 24}), *map(json.dumps, events)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_cast_errors_name_the_file_and_line(tmp_path: Path):
    bad = tmp_path / "bad.cast"
    bad.write_text('{"version": 2}\n[0.1, "o", "x"]\nnot json\n[0.2, "o", "y"]\n')
    with pytest.raises(BashenvError, match=r"bad\.cast:3: not an asciicast event"):
        read_cast(bad)
    bad.write_text('{"version": 1}\n')
    with pytest.raises(BashenvError, match=r"bad\.cast:1: expected an asciicast v2 header"):
        read_cast(bad)
    torn = tmp_path / "torn.cast"
    torn.write_text('{"version": 2}\n[0.1, "o", "x"]\n[0.2, "o", "y')  # the writer was killed
    assert read_cast(torn).events == [(0.1, "o", "x")]


def test_replay_keeps_the_recorded_pace(tmp_path: Path):
    cast = _write_cast(tmp_path / "a.cast", [[0.5, "o", "a"], [1.5, "o", "b"], [11.5, "o", "c"]])
    slept: list[float] = []
    out = io.StringIO()
    replay(cast, speed=2.0, idle_limit=3.0, out=out, sleep=slept.append)
    assert out.getvalue() == "abc\n" and slept == [0.25, 0.5, 1.5]
    slept.clear()
    replay(cast, wait=False, out=io.StringIO(), sleep=slept.append)
    assert slept == []
    with pytest.raises(BashenvError, match="--speed must be positive"):
        replay(cast, speed=0, out=io.StringIO())


def test_replay_passes_escapes_only_when_asked(tmp_path: Path):
    """The shell already drops escapes from observations; a cast from elsewhere may not."""
    cast = _write_cast(tmp_path / "b.cast", [[0.1, "o", f"\x1b[1mbold\x1b[0m{OSC_TITLE}x"]])
    safe, raw = io.StringIO(), io.StringIO()
    replay(cast, wait=False, out=safe)
    replay(cast, wait=False, raw=True, out=raw)
    assert safe.getvalue() == "\x1b[1mbold\x1b[0mx\n"
    assert raw.getvalue() == f"\x1b[1mbold\x1b[0m{OSC_TITLE}x\r\n"


def _synthetic_run(tmp_path: Path) -> Path:
    """A run whose every text field carries markup, including the task id (which a real
    task file cannot: ids are checked) and a record pointing outside the run directory."""
    run = tmp_path / "run"
    (run / "t").mkdir(parents=True)
    evil_id = "x" + INJECTED
    step = {"type": "step", "step": 1, "action": "cat " + INJECTED, "output": INJECTED,
            "exit_code": 0, "t": 0.1, "policy": {"messages": [{"role": "assistant", "content": INJECTED}]}}
    (run / "t" / "e.jsonl").write_text("\n".join(json.dumps(x) for x in (
        {"type": "header", "task_id": evil_id, "issue": INJECTED}, step, {"type": "end"})) + "\n")
    _write_cast(run / "t" / "e.cast", [[0.1, "o", INJECTED]])
    records = [
        {"task_id": evil_id, "agent": INJECTED, "outcome": INJECTED, "resolved": False, "steps": 1,
         "seconds": 1.0, "error": INJECTED, "model": INJECTED, "model_patch": INJECTED,
         "verdict": {"fail_to_pass": {INJECTED: INJECTED}, "log": INJECTED, "note": INJECTED},
         "trajectory": "t/e.jsonl", "cast": "t/e.cast"},
        {"task_id": "outside", "agent": "gold", "outcome": "resolved", "resolved": True,
         "trajectory": "../../../etc/passwd", "cast": str(run / "t" / "e.cast")},
    ]
    (run / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return run


def test_every_untrusted_field_is_escaped(tmp_path: Path):
    page = write_report(_synthetic_run(tmp_path), tmp_path / "page.html", player=False)
    html = page.read_text()
    assert "<script>document" not in html and "<img src=x" not in html
    assert html.count("&lt;script&gt;document.body.dataset.pwned=1&lt;/script&gt;") >= 10
    assert "<script" not in html  # no player asked for: no script at all
    assert "missing or outside the run directory" in html  # the record that points outside
    assert "/etc/passwd" not in html.split("<h2>Episodes</h2>")[0].split('id="verdicts"')[1]


def test_bad_run_directories_are_named(tmp_path: Path):
    with pytest.raises(BashenvError, match=r"nowhere: no such run directory or results file"):
        load_run(tmp_path / "nowhere")
    with pytest.raises(BashenvError, match=r"not a run directory \(no results.jsonl"):
        load_run(tmp_path)
    (tmp_path / "results.jsonl").write_text("torn {\n")
    with pytest.raises(BashenvError, match=r"results.jsonl: no results records"):
        load_run(tmp_path)


def test_a_results_file_reports_into_its_run_directory(tmp_path: Path):
    """`-o results/gold.jsonl` keeps trajectories in results/gold/: the page goes there and
    its links still reach them."""
    run = _synthetic_run(tmp_path)
    legacy = run / "gold.jsonl"
    (run / "results.jsonl").rename(legacy)
    page = write_report(legacy, player=False)
    assert page == run / "gold" / "report.html"
    hrefs = [h for h in parse(page.read_text()).by_id("verdicts").all("a")
             if not h.attrs["href"].startswith("#")]
    assert [h.attrs["href"] for h in hrefs] == ["../t/e.jsonl", "../t/e.cast", "../t/e.cast"]
    assert all((page.parent / h.attrs["href"]).is_file() for h in hrefs)


def test_a_large_run_keeps_the_page_light(tmp_path: Path, monkeypatch):
    """Past the page's budgets, step outputs are left out (commands stay) and recordings are
    linked, not embedded; only the first players start with the page."""
    from bashenv.report import html

    run = tmp_path / "run"
    records = []
    for i in range(3):
        (run / f"t{i}").mkdir(parents=True)
        steps = [{"type": "step", "step": n, "action": f"cmd-{i}-{n}", "output": "o" * 100}
                 for n in range(1, 4)]
        (run / f"t{i}" / "e.jsonl").write_text("".join(json.dumps(x) + "\n" for x in
                                                       [{"type": "header", "task_id": f"t{i}"}, *steps]))
        _write_cast(run / f"t{i}" / "e.cast", [[0.1, "o", "x" * 100]])
        records.append({"task_id": f"t{i}", "agent": "a", "outcome": "unresolved",
                        "trajectory": f"t{i}/e.jsonl", "cast": f"t{i}/e.cast"})
    (run / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    monkeypatch.setattr(html, "PAGE_OUTPUT_CHARS", 450)  # four and a half outputs
    monkeypatch.setattr(html, "PAGE_PLAYER_BYTES", 450)  # two recordings (about 200 bytes each)
    monkeypatch.setattr(html, "PLAYERS_OPEN", 1)
    dom = parse(write_report(run).read_text())
    outputs = [p.text() for p in dom.all("pre", "output")]
    assert outputs[:5] == ["o" * 100] * 5 and len(outputs) == 9
    assert all("left out to keep the page light" in o for o in outputs[5:])
    assert len([p for p in dom.all("pre", "cmd")]) == 9  # every command is still there
    boxes = dom.all("details", "player-box")
    assert len(boxes) == 2 and ["open" in b.attrs for b in boxes] == [True, False]
