"""The ``kvault`` command line."""
