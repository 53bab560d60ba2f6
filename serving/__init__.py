"""FastAPI prediction service that follows the production alias of the MLflow registry (see docs/serving.md)."""
