"""nightshift's pages inside the Airflow UI: the routes of `nightshift.links`, served from the object store.

`keys` says which store keys may be served (the report areas, of a configured model, never outside), `runs` what a
DAG run wrote (a night's pages, a retrain's or rollback's ledger entry) and `app` the FastAPI app that serves them
behind an authentication dependency the caller gives. No Airflow import: `plugins/nightshift_plugin.py` wires it in.
"""
