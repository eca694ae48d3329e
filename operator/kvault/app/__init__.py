"""Process wiring: the only place that builds a dev server, a cluster data plane or the
operator from configuration (plugins, backends, listeners). ``cli/`` parses flags and calls
it; nothing below imports it."""
