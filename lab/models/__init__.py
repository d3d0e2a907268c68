"""The lab's tables. One module per area; import everything here so Django finds it."""
from lab.models.teams import Membership, Project, Role, Team  # noqa: F401
from lab.models.datasets import Dataset  # noqa: F401
from lab.models.runs import Run, RunStatus  # noqa: F401
from lab.models.events import CheckpointRecord, EvalResult, Metric, MetricSummary, RunLog, Trace  # noqa: F401
from lab.models.workers import Worker  # noqa: F401
from lab.models.review import Annotation, ApiToken  # noqa: F401
from lab.models.registry import RegisteredModel  # noqa: F401
