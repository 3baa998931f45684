"""Reports: the thesis' tables with our numbers beside them, and figures (``adagrow report``).

The code is here; what it writes lives apart from it, under ``reports/tables/`` (tables as Markdown and
LaTeX, figures under ``reports/tables/plots/``), so a reader of ``reports/`` sees the generator and a
reader of ``reports/tables/`` sees only generated files.  The committed tables are exactly what
``adagrow report`` writes from the committed records in ``results/`` (``tests/test_reports_committed.py``).
"""

RESULTS_DIR = "results"  # the committed records the committed tables are built from
TABLES_DIR = "reports/tables"  # where `adagrow report` writes, unless --out says otherwise
