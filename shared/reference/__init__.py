"""Reference data: the bundled ONS files, age bands and groups, and the loaders."""
