"""World-model environments (TracePredict-v0, Halt-v0): predict what code does before it runs."""
