"""Evaluation against a pool's planted truth, in one place.

- :mod:`kit.eval.labels`: a pool's truth table (``labels.csv``: planted defects, true styles, reference
  ratings) and teacher ratings (JSONL), read into tables keyed by sample id;
- :mod:`kit.eval.metrics`: detection metrics, scores against that truth (ROC AUC clean vs defect, paired
  win rates, where duplicates land, multi-label agreement);
- :mod:`kit.eval.report`: every figure docs/results.md reports about a pool (``kit report``), as JSON;
- :mod:`kit.eval.markdown`: docs/results.md's tables, formatted from that JSON;
- :mod:`kit.eval.docs`: docs/results.md's generated blocks, rewritten from the committed results (``kit docs``).

Nothing is imported here, so that importing one module (``kit.mmssr.style_rules`` needs only the metrics)
loads no other.
"""
