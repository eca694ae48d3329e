"""kvault: a key vault that lives inside a Kubernetes cluster."""

__version__ = "0.1.0"
