"""The labels stage: `parse` judges a label drop row by row, as the validation stage judges a data drop."""
