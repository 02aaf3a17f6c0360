"""`python -m gcm_fund` runs the command line."""

from gcm_fund.cli.app import main

main()
