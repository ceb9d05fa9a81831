"""The programs the Makefile starts, each a `python -m` module that imports no pipeline:
`make serve` (serve.py), `make mlflow-ui` (mlflow_ui.py), `make team-up` / `team-down`
(team/); and processes.py, which starts, waits for and stops servers for them, the tests and
the benchmarks."""
