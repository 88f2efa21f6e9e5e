"""Engine-level stages used by the named pipelines (ingest checks, record finalisation)."""
