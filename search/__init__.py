"""budgetnas: find the most accurate small CNN within a hard parameter budget.

The application layer: command line, Optuna study, objective, confirmation, export, report and
benchmarks. `python -m search --help` lists everything.
"""

__version__ = "0.1.0"
