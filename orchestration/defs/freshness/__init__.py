"""Freshness: a sensor that watches the source tables and, when some changed, launches one run of
their extraction and only what is downstream of them (issue 21). Off by default: the daily refresh
stays the default mode."""
