"""Static HTML reports of run directories, and terminal replays of trajectories and casts."""

from bashenv.report.html import write_report
from bashenv.report.rundir import Episode, Run, Trajectory, load_run, read_trajectory
from bashenv.report.terminal import Cast, plain_text, read_cast, terminal_safe

__all__ = ["Cast", "Episode", "Run", "Trajectory", "load_run", "plain_text", "read_cast",
           "read_trajectory", "terminal_safe", "write_report"]
