"""bipart's benchmarks, grouped by the question they answer; the figures are in RESULTS.md.

- ``quality/``: how well are parts labeled, per dev set, against the nearest-neighbour floor?
- ``speed/``: how long does it take, and in how much memory?
- ``paper/``: do the paper's tables and claims hold here?
- ``training/``: what does training buy, and what does it cost?
- ``common/``: what they share (data, indexes, cached evaluations, tables).

Run a group from the repository root with ``python -m benchmarks GROUP`` (``--list`` shows
its commands), or one script with ``python benchmarks/GROUP/SCRIPT.py``.
"""
