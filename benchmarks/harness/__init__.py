"""Measuring a Shoplake run from outside its code.

- ``processes``: run a command to completion, with its wall time, CPU time and the peak RSS of its
  whole process tree (the run process, forked step processes, dbt), and how busy the machine was;
- ``runlog``: phases of a run from Dagster's own event log (step start and end, the metadata the
  assets emit: ``dbt_build_seconds``, ``publish_seconds``, ``publish_phases``) and dbt's
  ``run_results.json``;
- ``results``: the machine, the code version, and result files named by scale, date and code.

Nothing here patches or wraps the project's functions: what a phase costs is what the pipeline itself
reports in its events, so a renamed function cannot silently drop out of a figure.
"""
