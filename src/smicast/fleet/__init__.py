"""Many agents at once: host lists, per-host clients (SSE, /snapshot, /metrics), fleet traces."""
