"""RL-trainer adapters and asynchronous rollout collection over BashSWE episodes."""
