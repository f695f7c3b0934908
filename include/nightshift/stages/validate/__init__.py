"""The validation stage: `checks` validates a frame (its entry, `validate_frame`), `coerce` types a drop's text,
`gx_run` runs the checks through Great Expectations, `findings` holds one check's findings, `outcome` combines
chunk, file and night results into the night's verdict, and `text` words values for every message; `tasks` is what
the nightly DAG calls (plan the drop's files, validate each, commit the night: curated, quarantine, result pages).
"""
