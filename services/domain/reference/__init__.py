"""Loading the bundled reference data: areas, population projections and prevalence."""
