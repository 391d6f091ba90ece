"""Reference vocabularies: the bundled ONS files, age bands and groups."""
