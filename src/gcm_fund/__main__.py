"""`python -m gcm_fund` runs the command line."""

from .cli import main

main()
