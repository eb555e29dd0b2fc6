"""`python -m bashenv.cli`."""

from bashenv.cli import main

main()
