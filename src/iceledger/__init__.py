"""iceledger: sourced, documented numbers from the public record of U.S. immigration enforcement."""

import os

# One BLAS thread unless the caller says otherwise (read when numpy loads, so set before it does):
# the matrices iceledger factors are small (the disclosure planner's incidence matrices), and
# OpenBLAS's threads cost more in waking and waiting for each other than they save, most of all
# on a machine whose cores are busy.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

__version__ = "0.1.0"
