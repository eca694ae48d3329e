"""Cluster fixtures for the e2e suite (the plugin lives in e2e.fixtures)."""

from e2e.fixtures import *  # noqa: F403 - fixtures and hooks are the plugin's public API
