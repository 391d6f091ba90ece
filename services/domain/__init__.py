"""Application logic both services run: projection runs, return loading, reference data, the
demo ICB and job sending. Imports `shared`; `shared` never imports it."""
