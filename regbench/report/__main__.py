"""`python -m regbench.report`: see `regbench.report.cli`."""

import sys

from regbench.report.cli import main

sys.exit(main())
