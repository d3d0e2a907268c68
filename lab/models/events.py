"""What a run's event stream (events.jsonl) becomes in the database.

Each row keeps the event's `seq`; unique constraints on (run, seq[, name]) make ingestion
idempotent, so re-reading a file after a crash never duplicates a metric or a trace.
"""
from django.db import models


class Metric(models.Model):
    run = models.ForeignKey("lab.Run", on_delete=models.CASCADE, related_name="metrics")
    seq = models.BigIntegerField()
    step = models.IntegerField()
    name = models.CharField(max_length=100)
    value = models.FloatField(null=True)  # NaN/inf stored as null

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "seq", "name"], name="metric_once")]
        # Covering index: a chart reads (step, value) of one name from the index alone, no table lookups.
        indexes = [models.Index(fields=["run", "name", "step", "value"], name="metric_series_covering")]


class MetricSummary(models.Model):
    """A metric's minimum and maximum over the steps [block·2**level, (block+1)·2**level), each with the
    first step it is reached at: a chart of a long series reads one row per bucket instead of every
    point (lab.services.metric_summaries). Kept by ingestion in the same transaction as the metrics."""

    run = models.ForeignKey("lab.Run", on_delete=models.CASCADE, related_name="metric_summaries", db_index=False,
                            db_constraint=False)
    name = models.CharField(max_length=100)
    level = models.SmallIntegerField()
    block = models.IntegerField()
    low_step = models.IntegerField()
    low = models.FloatField()  # the minimum
    high_step = models.IntegerField()
    high = models.FloatField()  # the maximum

    class Meta:
        # Also the index a chart reads: (run, name, level) in block order.
        constraints = [models.UniqueConstraint(fields=["run", "name", "level", "block"], name="metric_summary_once")]


class Trace(models.Model):
    """One sampled completion; the G completions of one prompt share a group_id."""

    run = models.ForeignKey("lab.Run", on_delete=models.CASCADE, related_name="traces")
    seq = models.BigIntegerField()
    step = models.IntegerField()
    group_id = models.CharField(max_length=64, db_index=True)
    prompt_id = models.CharField(max_length=128, blank=True, db_index=True)  # follows one prompt across steps
    prompt = models.TextField()
    completion = models.TextField()
    think = models.TextField(blank=True)
    answer = models.TextField(blank=True)
    gold = models.TextField(blank=True, default="")  # the reference answer the trainer checked against ("" on older traces)
    reward = models.FloatField(null=True)
    rewards = models.JSONField(default=dict)  # component → value
    advantage = models.FloatField(null=True)
    status = models.CharField(max_length=16, blank=True)  # correct | wrong | unparseable | skipped
    tokens = models.IntegerField(default=0)
    truncated = models.BooleanField(default=False)
    has_reflection = models.BooleanField(default=False)  # "wait", "let me check", … (lab.services.traces)
    language_mix = models.FloatField(null=True)  # share of non-target-language words in the think part
    source = models.CharField(max_length=24, default="train")  # train | eval | rejection_sampling

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "seq"], name="trace_once")]
        indexes = [models.Index(fields=["run", "step"]), models.Index(fields=["run", "status", "step"])]


class CheckpointRecord(models.Model):
    run = models.ForeignKey("lab.Run", on_delete=models.CASCADE, related_name="checkpoints")
    seq = models.BigIntegerField()
    step = models.IntegerField()
    path = models.CharField(max_length=500)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "seq"], name="checkpoint_once")]
        ordering = ["step"]


class EvalResult(models.Model):
    run = models.ForeignKey("lab.Run", on_delete=models.CASCADE, related_name="eval_results")
    seq = models.BigIntegerField()
    step = models.IntegerField()
    benchmark = models.CharField(max_length=64)
    metric = models.CharField(max_length=32)  # pass@1 | cons@k | pass@k | accuracy
    value = models.FloatField(null=True)
    n = models.IntegerField(default=0)  # samples

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "seq"], name="eval_once")]
        indexes = [models.Index(fields=["run", "benchmark", "step"])]


class RunLog(models.Model):
    run = models.ForeignKey("lab.Run", on_delete=models.CASCADE, related_name="logs")
    seq = models.BigIntegerField()
    kind = models.CharField(max_length=16, default="log")  # log | status
    message = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "seq"], name="log_once")]
