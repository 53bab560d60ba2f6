"""The ASGI app for `uvicorn serving.main:app`: settings from the environment (RETRAIN_*)."""

from __future__ import annotations

from serving.app import create_app

app = create_app()
