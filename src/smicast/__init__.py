"""smicast: hardware telemetry as schema-1 snapshots, NDJSON traces and an HTTP API."""

__version__ = "0.1.0"

__all__ = ["__version__"]
