"""Projection runs: requesting them, the reaper and stale marking."""
