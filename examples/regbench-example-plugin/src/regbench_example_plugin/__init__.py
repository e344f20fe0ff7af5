"""An example regbench plugin; regbench imports its modules through the entry points."""
