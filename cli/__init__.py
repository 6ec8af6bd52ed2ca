"""Command-line plumbing shared by every mxforge command: configuration files, one-line
errors (:mod:`cli.config`) and the unit options derived from the units' parameter records
(:mod:`cli.units`). ``hw/`` imports no argparse; its command line lives here."""
