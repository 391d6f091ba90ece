"""Workforce returns: staging, validating and loading single and bulk returns."""
