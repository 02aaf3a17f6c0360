"""inputs."""

# history.csv declares itself among the optional input files (docs/cycles.md).
from gcm_fund.inputs import history as _history  # noqa: F401
