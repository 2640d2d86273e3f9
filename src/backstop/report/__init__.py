"""Reports built from a stress run's events: Parquet tables, a terminal summary, HTML plots."""
