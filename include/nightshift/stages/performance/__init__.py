"""The performance stage: `realized` measures a night's predictions against the labels that arrived for them, per
slice, with their coverage; `estimate` estimates a night's metrics before its labels arrive (CBPE), from the
champion's holdout calibration stored beside the model."""
