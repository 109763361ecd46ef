from automlops.cli import entry_point

entry_point()
