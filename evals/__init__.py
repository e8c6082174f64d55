"""Failure-scenario evals for the context engine (see runner.py)."""
