"""The model lifecycle: `train`, `evaluate` and the retrain `policy` are pure; `tasks` is what the retrain and rollback DAGs call."""
