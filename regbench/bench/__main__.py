"""`python -m regbench.bench`: the CPU kernel benchmark (same flags as `regbench bench`)."""

from regbench.bench.cpu import cli

raise SystemExit(cli())
