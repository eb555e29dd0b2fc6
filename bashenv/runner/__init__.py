"""Many episodes in parallel, resumable JSONL results."""

from bashenv.runner.results import ResultsFile
from bashenv.runner.run import run_benchmark, run_episode

__all__ = ["ResultsFile", "run_benchmark", "run_episode"]
