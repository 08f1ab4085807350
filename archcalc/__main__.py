"""`python -m archcalc` runs the command line.

The process is short-lived and builds tens of objects per layer that all stay alive to the end:
with the collector's default thresholds (700, 10, 10) its full passes walk every live object again
and again, about a third of the CPU time of a 10,000-layer report. Collected rarely instead,
reference cycles are still freed, just later.
"""

import gc

gc.set_threshold(100_000, 50, 100)

from archcalc.cli import main  # after the thresholds: importing allocates too

main()
