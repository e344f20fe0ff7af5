"""asv benchmark suites of regbench (run with `asv run`; see asv.conf.json)."""
