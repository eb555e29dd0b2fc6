"""Many episodes in parallel, resumable JSONL results."""

from bashenv.runner.results import INFRA_ERROR, ResultsFile
from bashenv.runner.run import run_benchmark, run_episode

__all__ = ["INFRA_ERROR", "ResultsFile", "run_benchmark", "run_episode"]
