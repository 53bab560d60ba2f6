"""Predictions on the hot path: XGBoost's in-place predict called through its C API.

`Booster.inplace_predict` spends ~150 us per call in Python around the C call (a proxy DMatrix per
call, JSON configs, a class built per result), more than 200 trees take on one row. This calls the
same `XGBoosterPredictFromDense` with the config encoded once and one proxy (holding the base margin)
kept per batch size, so results are bit-identical to `ForecastModel.predict` (tested). If this xgboost
build lacks the private helpers it relies on, it falls back to `ForecastModel.predict`.

Threads: the booster's `nthread` does not cover everything a prediction runs. Setting the base margin
on the proxy goes through XGBoost's *global* thread count (all cores by default), and on a busy
machine that parallel region stalls: a one-row predict measured 4-12 ms instead of 0.3 ms with two
uvicorn workers on two loaded cores. XGBoost's global config is per thread, so every thread that
predicts sets it to the serving nthread once (`xgboost.set_config(nthread=...)`).
"""

from __future__ import annotations

import ctypes
import logging
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from retrain.model import ForecastModel

log = logging.getLogger(__name__)

_MAX_PROXIES = 16  # proxies cached by row count; a base margin cannot change shape on a proxy


class FastPredictor:
    """Predicts a float64 feature matrix exactly like `ForecastModel.predict`, with less overhead."""

    def __init__(self, model: ForecastModel, *, use_c_api: bool = True, nthread: int = 1) -> None:
        self.model = model
        self.nthread = nthread
        self._thread_config = threading.local()
        self._lock = threading.Lock()
        self._proxies: dict[int, Any] = {}
        self._native: Callable[[np.ndarray], np.ndarray] | None = None
        if use_c_api:
            try:
                self._native = self._bind()
            except (ImportError, AttributeError) as exc:
                log.warning("xgboost C-API fast path unavailable (%s); using Booster.inplace_predict", exc)

    @property
    def native(self) -> bool:
        """Whether predictions go through the C API directly."""
        return self._native is not None

    def predict(self, matrix: np.ndarray) -> np.ndarray:
        """Predictions (float64) for rows in `model.feature_names` order."""
        if not getattr(self._thread_config, "done", False):
            self._limit_threads()
        if self._native is None:
            return self.model.predict(matrix)
        return self._native(matrix)

    def _limit_threads(self) -> None:
        """XGBoost's global thread count, for this thread, to the serving nthread (see the module doc)."""
        import xgboost

        xgboost.set_config(nthread=self.nthread)
        self._thread_config.done = True

    def _bind(self) -> Callable[[np.ndarray], np.ndarray]:
        from xgboost._data_utils import array_interface
        from xgboost.core import (  # type: ignore[attr-defined]
            _LIB,
            _check_call,
            _ProxyDMatrix,
            c_bst_ulong,
            c_str,
            make_jcargs,
        )

        booster = self.model.booster
        config = make_jcargs(
            type=0,
            training=False,
            iteration_begin=0,
            iteration_end=0,
            missing=np.nan,
            strict_shape=False,
            cache_id=0,
        )
        field = c_str("base_margin")
        no_proxy = ctypes.c_void_p()

        def proxy_with_margin(matrix: np.ndarray) -> Any:
            margin = self.model.margin(matrix)
            if margin is None:
                return no_proxy
            rows = matrix.shape[0]
            proxy = self._proxies.get(rows)
            if proxy is None:
                if len(self._proxies) >= _MAX_PROXIES:
                    self._proxies.clear()
                proxy = self._proxies[rows] = _ProxyDMatrix()
            _check_call(_LIB.XGDMatrixSetInfoFromInterface(proxy.handle, field, array_interface(margin)))
            return proxy.handle

        def native(matrix: np.ndarray) -> np.ndarray:
            data = np.ascontiguousarray(matrix, dtype=np.float64)
            rows = data.shape[0]
            if rows == 0:
                return np.empty(0, dtype=np.float64)
            shape = ctypes.POINTER(c_bst_ulong)()
            dims = c_bst_ulong()
            preds = ctypes.POINTER(ctypes.c_float)()
            # The result buffer belongs to the booster until its next prediction: copy under the lock.
            with self._lock:
                handle = proxy_with_margin(data)
                _check_call(
                    _LIB.XGBoosterPredictFromDense(
                        booster.handle,
                        array_interface(data),
                        config,
                        handle,
                        ctypes.byref(shape),
                        ctypes.byref(dims),
                        ctypes.byref(preds),
                    )
                )
                size = 1
                for axis in range(dims.value):
                    size *= int(shape[axis])
                out = np.ctypeslib.as_array(preds, shape=(size,)).astype(np.float64)
            if size != rows:  # multi-output boosters: same contract as inplace_predict's flattening
                return self.model.predict(matrix)
            return out

        return native
