"""What the benchmark groups share: one home for loading and for printing tables.

- ``shared_data``: the dev sets of ``../shared/data`` (PSB, human_seg, pm), read in place;
- ``shared_index``: their train and test splits as shape indexes under ``.bench/indexes``
  (also a command: ``python benchmarks/common/shared_index.py``);
- ``paper_runs``: indexes on demand, trained models, cached evaluations (``.bench/evals``),
  :func:`~benchmarks.common.paper_runs.print_table` and the provenance lines every table
  carries (command, date, machine, git revision, load average);
- ``floor``: the nearest-neighbour label transfer (the no-learning floor).
"""
