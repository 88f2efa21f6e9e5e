"""The bottom layer: record schema, stages, executors, errors, config, I/O. Imports nothing above it."""
