"""Many episodes in parallel, resumable JSONL results, a trajectory and cast per episode."""

from bashenv.runner.api import RunResult, agent_spec, run
from bashenv.runner.results import (
    AGENT_ERROR,
    INFRA_ERROR,
    Plan,
    ResultsFile,
    run_paths,
    write_predictions,
)
from bashenv.runner.run import run_benchmark, run_episode, task_hash
from bashenv.runner.trajectory import read_trajectory

__all__ = ["AGENT_ERROR", "INFRA_ERROR", "Plan", "ResultsFile", "RunResult", "agent_spec",
           "read_trajectory", "run", "run_benchmark", "run_episode", "run_paths", "task_hash",
           "write_predictions"]
