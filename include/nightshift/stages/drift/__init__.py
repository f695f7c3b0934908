"""The drift stage: `measure` runs Evidently on a night's sample against the champion's reference; `tasks` is
what the nightly DAG calls (sample the night, measure, publish the reports and the index, record the metrics).
"""
