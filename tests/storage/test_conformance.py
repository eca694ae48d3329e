"""Collect the backend conformance suite (parametrised over backends in ``conftest.py``)."""

from .conformance import *  # noqa: F403
