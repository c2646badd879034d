"""Tools around sparse-mm that are not the benchmark: query load, crash scenarios, training and
encoding speed (here); README recorders (tools.recorders); one-off probes (tools.probes)."""
