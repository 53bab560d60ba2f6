"""retrain: daily retraining, gated promotion, serving and monitoring of a tabular forecasting model."""

__version__ = "0.1.0"
