"""The scoring stage: `predict` scores a curated partition with the serving models."""
