"""The built-in simulator: retail daily demand with a known noise floor, injectable drift and faults."""
