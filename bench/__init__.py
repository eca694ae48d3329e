"""kvault benchmarks: ``python -m bench NAME`` prints one JSON object."""
