"""Metric definitions, one module per question; importing this package registers them all."""

from iceledger.metrics.registry import REGISTRY, Metric, MetricParams, compute, get  # noqa: F401
from iceledger.metrics import detention  # noqa: F401,E402
from iceledger.metrics import outcomes  # noqa: F401,E402
from iceledger.metrics import cost  # noqa: F401,E402
from iceledger.metrics import reconciliation  # noqa: F401,E402
from iceledger.metrics import capabilities  # noqa: F401,E402
from iceledger.metrics import volume  # noqa: F401,E402
from iceledger.metrics import targeting  # noqa: F401,E402
from iceledger.metrics import severity  # noqa: F401,E402
from iceledger.metrics import facilities  # noqa: F401,E402
from iceledger.metrics import pipeline  # noqa: F401,E402
from iceledger.metrics import human_cost  # noqa: F401,E402
from iceledger.metrics import published  # noqa: F401,E402
from iceledger.metrics import published_human_cost  # noqa: F401,E402
from iceledger.metrics import deaths  # noqa: F401,E402
