"""Deploy targets behind one registry: each publishes a blessed, sealed bundle somewhere that serves.

The package stage writes the candidate bundle; the gate blesses it (or not); the deploy stage then
hands the blessed bundle to every target in `deploy.targets`, in order. base.py says what a target is;
targets.py registers them; package.py writes bundles; card.py writes the model card.
"""
