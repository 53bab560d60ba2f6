"""MLflow pyfunc flavour of ForecastModel: what `models:/name/N` loads, for any MLflow consumer."""

from __future__ import annotations

from typing import Any

import numpy as np
from mlflow.pyfunc import PythonModel  # type: ignore[attr-defined]

from retrain.model import ForecastModel

BOOSTER_ARTIFACT = "booster"
BOOSTER_FILE = "model.ubj"


class ForecastPyfunc(PythonModel):  # type: ignore[misc]
    """Predicts a DataFrame whose columns are the model's feature names."""

    def load_context(self, context: Any) -> None:
        """Load the booster artifact."""
        self.model = ForecastModel.load(context.artifacts[BOOSTER_ARTIFACT])

    # Untyped on purpose: MLflow reads type hints on predict as a schema and warns on these.
    def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
        """Predictions for the rows of model_input (columns in any order, matched by name)."""
        frame = model_input[self.model.feature_names]
        return self.model.predict(frame.to_numpy(dtype=np.float64, na_value=np.nan))
