"""The scoring stage: `predict` scores a curated partition with the serving models; `tasks` is what the nightly DAG
calls (fix the versions, score each curated file, publish the predictions and load the warehouse).
"""
