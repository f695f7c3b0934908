"""The labels stage: `parse` judges a label drop row by row, as the validation stage judges a data drop; `tasks`
is what the nightly DAG calls (quarantine the bad rows, curate the rest).
"""
