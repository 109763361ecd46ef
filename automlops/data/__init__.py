"""Loading, describing, checking and splitting tabular data."""
