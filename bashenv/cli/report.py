"""`bashenv report` (a run directory as one HTML page) and `bashenv show` (a replay)."""

from __future__ import annotations

from pathlib import Path

import typer

from bashenv.cli.app import app, console


@app.command("report")
def report(
    run_dir: Path = typer.Argument(..., help="Run directory (holding results.jsonl) or a "
                                   "results .jsonl file."),
    output: Path | None = typer.Option(None, "-o", "--output",
                                       help="HTML file to write (default RUN_DIR/report.html)."),
    player: bool = typer.Option(True, help="Embed the terminal player (needs the "
                                "xstatic-asciinema-player package; else transcripts only)."),
) -> None:
    """Write one static, self-contained HTML page: verdicts, resolve rate, distributions,
    per-test status and each episode's transcript and recording."""
    from bashenv.report import write_report

    written = write_report(run_dir, output, player=player)
    console.print(f"wrote {written}")


@app.command("show")
def show(
    path: Path = typer.Argument(..., help="A trajectory (.jsonl), an asciicast (.cast), or a "
                                "run directory with --task."),
    task: str | None = typer.Option(None, help="In a run directory: the task whose latest "
                                    "episode to show."),
    agent: str | None = typer.Option(None, help="In a run directory: the agent, when several ran."),
    cast: bool = typer.Option(False, "--cast", help="In a run directory: play the terminal "
                              "recording instead of the trajectory."),
    speed: float = typer.Option(1.0, help="Playback speed factor."),
    wait: bool = typer.Option(True, help="Keep the recorded pace (--no-wait: print at once)."),
    idle_limit: float = typer.Option(2.0, help="Longest pause, in recorded seconds."),
    raw: bool = typer.Option(False, help="Pass a cast's escape sequences to the terminal as "
                             "recorded (default: colours only; the output is untrusted)."),
) -> None:
    """Replay an episode in the terminal."""
    from bashenv.report.replay import recording_of, replay

    if path.is_dir():
        path = recording_of(path, task, agent, cast)
    try:
        replay(path, speed=speed, wait=wait, idle_limit=idle_limit, raw=raw)
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
