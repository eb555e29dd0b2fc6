"""bashenv."""
