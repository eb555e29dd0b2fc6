"""Static HTML reports of run directories."""
