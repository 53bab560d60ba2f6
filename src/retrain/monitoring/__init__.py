"""Monitoring in production: drift checks (Evidently), realized performance, alerts and their metrics."""
