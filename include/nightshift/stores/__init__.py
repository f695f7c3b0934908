"""Where nightshift keeps things: the object store (`objects`), the warehouse and its migrations, the MLflow registry, locks."""
