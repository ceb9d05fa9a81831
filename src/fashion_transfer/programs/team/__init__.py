"""The team stack: a PostgreSQL cluster and an MLflow tracking server that a team shares
(stack.py), started and stopped by `make team-up` and `make team-down` (__main__.py)."""
