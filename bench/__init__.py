"""Benchmarks of renkei, each beside a baseline measured in the same run.

``python -m bench`` prints one table and writes ``docs/benchmarks.md`` with a chart;
``--quick`` runs every figure at small sizes. Ratios, not absolute numbers, are the
figures to read: the baseline shares the machine's noise with the measurement.
"""

import warnings

from authlib.deprecate import AuthlibDeprecationWarning

# authlib announces a move to httpx2; renkei stays on httpx until that is released (the
# test suite filters it too). authlib sets its warnings to "always" when first imported,
# so this filter goes in after that.
warnings.filterwarnings("ignore", category=AuthlibDeprecationWarning)
