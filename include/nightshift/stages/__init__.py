"""The stages a night goes through: wait for the drop, ingest and validate, score, take labels, measure drift, decide.

Each stage's pure rules live in its own module or subpackage (`ingest`, `validate`, `score`, `labels`, `drift`);
beside them, each subpackage's `tasks` is what the nightly DAG calls, reading and writing through the stores (`night`
holds what they share, `waiting` the drop sensor's checks, `decision` the retrain decision).
"""
