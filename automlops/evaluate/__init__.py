"""The evaluate stage: held-out test metrics, per-slice metrics and DVC plot tables of the chosen
model. evaluation.py is the stage's pure core, metrics.py the metrics, slices.py, plots.py and decision.py
the rest. Nothing is imported here, so the config checks (evaluate/checks.py) load without scikit-learn."""
