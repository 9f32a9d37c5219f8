"""What the reader sees: seed-level statistics and the claims they decide.

- :mod:`~imbcl.report.stats`: tests and intervals across seeds (one number per seed);
- :mod:`~imbcl.report.paired`: paired deltas against a reference run, per-group summaries;
- :mod:`~imbcl.report.registry`: every claim of the book, as data;
- :mod:`~imbcl.report.verdicts`: a claim evaluated on per-seed values, the claims table;
- :mod:`~imbcl.report.scorecard`: all claims on one page, and as JSON;
- :mod:`~imbcl.report.book`: the chapters' modules, and their claims evaluated from the store;
- :mod:`~imbcl.report.robustness`: the perturbation suite;
- :mod:`~imbcl.report.text`: numbers and outcomes glued into the chapters' prose;
- :mod:`~imbcl.report.figures`: figure conventions; ``ch1`` ... ``ch5``, ``atlas``, ``setting``:
  each page's figures, tables and claims' per-seed statistics.
"""
