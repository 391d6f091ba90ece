"""Vocabularies both services use: one module each, one name per thing."""
