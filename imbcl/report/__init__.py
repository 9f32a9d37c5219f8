"""What the reader sees: seed-level statistics and the claims they decide.

- :mod:`~imbcl.report.stats`: tests and intervals across seeds (one number per seed);
- :mod:`~imbcl.report.paired`: paired deltas against a reference run, per-group summaries;
- :mod:`~imbcl.report.registry`: every claim of the book, as data;
- :mod:`~imbcl.report.verdicts`: a claim evaluated on per-seed values, the claims table;
- :mod:`~imbcl.report.scorecard`: all claims on one page, and as JSON;
- :mod:`~imbcl.report.claims`: the per-chapter PASS/FAIL table of single statistics, until
  the chapters' claims are in the registry;
- :mod:`~imbcl.report.figures`: figure conventions.
"""
