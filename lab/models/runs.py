"""A run: one validated RunConfig, its state machine, its worker claim and its run directory.

States: queued → starting (claimed by exactly one worker) → running → completed | failed;
cancel: queued → cancelled directly; starting/running → cancelling → cancelled (the worker stops
the trainer). A stale heartbeat sends an active run back to queued (resume from its checkpoint)
until max_attempts is spent, then failed.
"""
from django.conf import settings
from django.db import models
from django.utils import timezone


class RunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    STARTING = "starting", "Starting"
    RUNNING = "running", "Running"
    CANCELLING = "cancelling", "Cancelling"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


ACTIVE_STATUSES = (RunStatus.STARTING, RunStatus.RUNNING, RunStatus.CANCELLING)


STAGE_NAMES = {"pretrain": "pretraining", "sft": "SFT", "grpo": "GRPO", "rejection_sampling": "rejection sampling",
               "rollout": "rejection sampling", "evaluate": "evaluation"}


class StageProgress:
    """One progress across a run's stages. A run with a base stage (base_steps > 0: the trainer's plan in
    its starting status; for older streams, its config's base.steps when kind is not pretrain) first
    pretrains its base (`stage` "base", the trainer's steps 1..base_steps), then runs its main job
    (`stage` "main", steps 1..main_steps again). `step`/`total_steps` are the current stage's, as the
    trainer says them; the overall step counts the base steps before the main ones.
    Shared by Run and the overview's light rows (lab.selectors.runs.RunSummary)."""

    __slots__ = ()  # no instance dict of its own: RunSummary's __slots__ then keep its rows small

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    @property
    def stage_count(self) -> int:
        return 2 if self.base_steps > 0 else 1

    @property
    def stage_index(self) -> int:
        return 2 if self.stage_count == 2 and self.stage == "main" else 1

    @property
    def stage_name(self) -> str:
        if self.stage_count == 2 and self.stage != "main":
            return STAGE_NAMES["pretrain"]
        return STAGE_NAMES.get(self.kind, self.kind)

    @property
    def stage_step(self) -> int:
        """The step shown against the stage's total: never past it (a stop mid-stage can report more)."""
        return min(self.step, self.total_steps) if self.total_steps else self.step

    @property
    def eta_scope(self) -> str:
        """What the trainer's ETA (its current stage only) leaves out: "" for the last stage, else e.g.
        "for pretraining; then GRPO, 150 steps, not yet estimated"."""
        if self.stage_count == 2 and self.stage != "main":
            return (f"for {STAGE_NAMES['pretrain']}; then {STAGE_NAMES.get(self.kind, self.kind)}, "
                    f"{self.main_steps} steps, not yet estimated")
        return ""

    @property
    def overall_total(self) -> int:
        return self.base_steps + self.main_steps if self.stage_count == 2 else self.total_steps

    @property
    def overall_step(self) -> int:
        if self.stage_count == 1:
            return self.step
        if self.stage == "main":
            return self.base_steps + min(self.step, self.main_steps)
        return min(self.step, self.base_steps)

    @property
    def progress(self) -> float:
        if self.status == RunStatus.COMPLETED:
            return 1.0
        total = self.overall_total
        return min(1.0, self.overall_step / total) if total else 0.0


class Run(StageProgress, models.Model):
    class Queue(models.TextChoices):
        CPU = "cpu", "CPU"
        GPU = "gpu", "GPU"

    team = models.ForeignKey("lab.Team", on_delete=models.CASCADE, related_name="runs")
    project = models.ForeignKey("lab.Project", on_delete=models.SET_NULL, null=True, blank=True)
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=24, default="grpo")  # RunConfig.kind
    recipe = models.CharField(max_length=64, blank=True)  # e.g. "aha-mini" when launched from a recipe
    quick = models.BooleanField(default=False)  # recipe --quick
    config = models.JSONField(default=dict)  # the validated RunConfig as JSON
    queue = models.CharField(max_length=8, choices=Queue.choices, default=Queue.CPU)
    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.QUEUED, db_index=True)
    message = models.TextField(blank=True)

    # lineage: started from another run's checkpoint (base → Zero → SFT → RL → distilled)
    parent = models.ForeignKey("self", on_delete=models.SET_NULL, null=True, blank=True, related_name="children")
    parent_step = models.IntegerField(null=True, blank=True)
    # a stage of a chain run (kind "chain", lab.services.chains): the stage's name; the parent is the chain run
    chain_stage = models.CharField(max_length=64, blank=True, default="")
    # what a finished run established (a chain: its comparison.json, stages, seed, commit); written by workers
    result = models.JSONField(default=dict, blank=True)

    # evaluation jobs: every checkpoint at a multiple of eval_every steps gets a child run of kind
    # "evaluate" on a copy of that checkpoint (lab.services.evaluations); 0 = none
    eval_every = models.PositiveIntegerField(default=0)
    eval_benchmarks = models.JSONField(default=list, blank=True)  # empty = the config's evaluation.benchmarks

    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    # claim and supervision (workers/)
    worker = models.ForeignKey("lab.Worker", on_delete=models.SET_NULL, null=True, blank=True, related_name="runs")
    attempt = models.PositiveIntegerField(default=0)
    max_attempts = models.PositiveIntegerField(default=3)
    retry_reason = models.CharField(max_length=300, blank=True)  # why the last attempt ended and the run went again
    resumed_from_step = models.IntegerField(null=True, blank=True)  # the step this attempt's trainer started at
    # per dataset of the config: {"dataset": its reference or task, "train_size", "heldout_size"} (the trainer's split)
    data_split = models.JSONField(default=list, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    dispatched_at = models.DateTimeField(null=True, blank=True)  # last message sent; the reconciler resends lost ones
    run_dir = models.CharField(max_length=500, blank=True)
    # the client's token of the request that made it (Idempotency-Key, the form's): a repeat makes no second run
    client_token = models.CharField(max_length=100, blank=True, default="")
    ingested_seq = models.BigIntegerField(default=-1)  # highest event seq stored
    compute_seconds = models.FloatField(default=0.0)  # summed over attempts, per device kind below
    gpu_count = models.PositiveIntegerField(default=0)

    # progress, from status events
    step = models.IntegerField(default=0)
    total_steps = models.IntegerField(default=0)
    phase = models.CharField(max_length=32, blank=True)
    # stages (StageProgress): which one the last events came from, and each one's steps (from the config)
    stage = models.CharField(max_length=8, blank=True)  # "" (not known yet) | base | main
    base_steps = models.IntegerField(default=0)  # 0 = the run has one stage
    main_steps = models.IntegerField(default=0)
    eta_s = models.FloatField(null=True, blank=True)
    last_activity_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["team", "-created_at"]), models.Index(fields=["status", "queue"])]
        constraints = [
            # one evaluation job per checkpoint, however often its event is ingested
            models.UniqueConstraint(fields=["parent", "parent_step"], condition=models.Q(kind="evaluate"),
                                    name="one_eval_per_checkpoint"),
            # one child run per stage of a chain run, however often chain.json is read
            models.UniqueConstraint(fields=["parent", "chain_stage"], condition=~models.Q(chain_stage=""),
                                    name="one_run_per_chain_stage"),
            models.UniqueConstraint(fields=["created_by", "client_token"], condition=~models.Q(client_token=""),
                                    name="one_run_per_client_token"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.status})"

    @property
    def attempt_note(self) -> str:
        """E.g. "attempt 2 of 3, resumed from step 25 after: trainer killed by SIGKILL"; "" for a first attempt."""
        if self.attempt <= 1:
            return ""
        note = f"attempt {self.attempt} of {self.max_attempts}"
        if self.resumed_from_step:
            note += f", resumed from step {self.resumed_from_step}"
        elif self.resumed_from_step == 0:
            note += ", started again from step 0 (no checkpoint yet)"
        return note + (f" after: {self.retry_reason}" if self.retry_reason else "")

    def touch(self) -> None:
        self.last_activity_at = timezone.now()
