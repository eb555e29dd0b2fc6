"""Past one machine: episodes, gradings and runs on a Ray cluster."""
