"""The validation stage: `checks` coerces a drop's text, runs the GX checks and combines the outcomes."""
