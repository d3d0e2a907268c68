"""One attempt of one run on this node: start the trainer, watch it, stream its events, end the run.

The trainer is a child process group (its own session) in the run directory. Every poll the supervisor
stores new events (lab.services.ingest) and reads the run's status; every heartbeat it stamps
Run.heartbeat_at and adds the elapsed compute time. Every write is fenced by (worker, attempt): once a
reaper has given the run to another attempt, this supervisor only kills its trainer and leaves.

Stopping: a cancel (status `cancelling`) or a worker shutdown sends SIGTERM to the group — the trainer
checkpoints and exits — and SIGKILL after the grace period; a lost claim sends SIGKILL at once. The
trainer dies with its supervisor (PR_SET_PDEATHSIG), and a lock on the run directory, held by both,
keeps a second trainer out of the directory until every process of the first one is gone.

Several ranks (distributed.nproc_per_node = N, a run with gpus: N): the supervisor starts the N rank
processes itself — RANK / LOCAL_RANK / WORLD_SIZE / MASTER_ADDR / MASTER_PORT as torchrun would set
them, CUDA_VISIBLE_DEVICES = the worker's first N GPUs — all in one process group (rank 0's), so cancel,
drain and SIGKILL reach every rank as they reach one trainer. (torchrun would start each rank in a
session of its own, out of the supervisor's reach.) A rank that exits non-zero takes the run down: the
others are SIGKILLed at once (a peer blocked in a collective would otherwise hang), and the attempt ends
as that rank's exit says — killed by a signal or EX_TEMPFAIL: requeued, resuming from the last
checkpoint; an error: failed.
"""
from __future__ import annotations

import ctypes
import fcntl
import json
import logging
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.db import Error as DatabaseError
from django.db import close_old_connections, connection, transaction
from django.db.models import F
from django.db.models.functions import Coalesce
from django.utils import timezone

from lab.models import Run, RunStatus, Worker
from lab.services.chains import CHAIN_KIND, ChainTails, chain_args, chain_sync, settle_stage_runs
from lab.services.datasets import rejection_sampling_dataset_create
from lab.services.dispatch import dispatch_run, requeue_run
from lab.services.ingest import EventTail, ingest_events
from lab.services.references import InputError, redact_paths, resolve_inputs
from r1model.train.chains import git_head
from workers.config import WorkerConfig

logger = logging.getLogger(__name__)

DONE_PHASES = ("done", "completed", "finished")  # the trainer's last status event says it finished
RETRYABLE_EXIT_CODES = (75,)  # EX_TEMPFAIL: the trainer asks to be run again (killed-by-signal also retries)
INGEST_PER_POLL = 50_000  # events stored per poll at most: catching up never starves the heartbeat
LOCK_WAIT_S = 60.0  # how long a new attempt waits for the previous trainer in the same directory to go
_PR_SET_PDEATHSIG = 1


def run_directory(run: Run) -> Path:
    return Path(run.run_dir) if run.run_dir else Path(settings.RUNS_DIR) / str(run.id)


def trainer_ranks(config: dict | None) -> int:
    """Processes the run's config asks for: distributed.nproc_per_node under backend deepspeed, else 1."""
    dist = (config or {}).get("distributed") or {}
    return int(dist.get("nproc_per_node") or 1) if dist.get("backend") == "deepspeed" else 1


def launch_prefix(trainer_cmd: tuple[str, ...], ranks: int) -> list[str]:
    """The trainer command, under torchrun for several ranks on this node (`PYTHON -m r1model` becomes
    `PYTHON -m torch.distributed.run --standalone --nproc-per-node N -m r1model`; another command runs as
    each rank's program with --no-python). torchrun forwards the supervisor's SIGTERM to every rank."""
    prefix = list(trainer_cmd)
    if ranks <= 1:
        return prefix  # one process; on a GPU node it uses one GPU
    launch = ["--standalone", "--nproc-per-node", str(ranks)]
    if len(prefix) >= 3 and prefix[1:3] == ["-m", "r1model"]:
        return [prefix[0], "-m", "torch.distributed.run", *launch, "-m", "r1model", *prefix[3:]]
    return ["torchrun", *launch, "--no-python", *prefix]


def trainer_launch(run: Run, run_dir: Path, cfg: WorkerConfig) -> tuple[list[str], int]:
    """One rank's argv — `train FILE` with the run's RunConfig (or `recipe run NAME` for a bare recipe) —
    and how many ranks run it (distributed.nproc_per_node under deepspeed, else 1).

    The stored config names its inputs by reference (run:ID@STEP, dataset:ID); the file the trainer reads
    has them resolved to paths on the data volume (InputError when one is gone or not the team's)."""
    if run.kind == CHAIN_KIND:  # a chain runs its stages itself, each in RUN_DIR/stages/NN-name (lab.services.chains)
        return [*cfg.trainer_cmd, *chain_args(run, run_dir)], 1
    if run.recipe and not run.config:  # a recipe name without a stored config: the trainer builds it
        return [*cfg.trainer_cmd, "recipe", "run", run.recipe, "--run-dir", str(run_dir)] + (["--quick"] if run.quick else []), 1
    # The lab stores a recipe's full config with the user's changes: the trainer runs exactly that.
    config = resolve_inputs(run)
    config_path = run_dir / "lab_config.json"
    tmp = config_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(config, indent=1, sort_keys=True))
    tmp.replace(config_path)
    return [*cfg.trainer_cmd, "train", str(config_path), "--run-dir", str(run_dir)], trainer_ranks(config)


def trainer_command(run: Run, run_dir: Path, cfg: WorkerConfig) -> list[str]:
    """The trainer's command as one would start it by hand: under torchrun for several ranks."""
    argv, ranks = trainer_launch(run, run_dir, cfg)
    if ranks <= 1:
        return argv
    return [*launch_prefix(cfg.trainer_cmd, ranks), *argv[len(cfg.trainer_cmd):]]


def visible_gpus(capabilities: dict | None, count: int) -> str | None:
    """CUDA_VISIBLE_DEVICES for a run of `count` GPUs on a worker that runs one run at a time: its first
    `count` GPUs (None for a CPU run or a worker that announced none)."""
    gpus = (capabilities or {}).get("gpu_list") or []
    if count <= 0 or not gpus:
        return None
    return ",".join(str(g["index"]) for g in gpus[:count])


def rank_env(env: dict, rank: int, world: int, port: int) -> dict:
    """What torchrun --standalone sets for rank `rank` of `world` on one node."""
    if world <= 1:
        return env
    return {**env, "RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(world),
            "LOCAL_WORLD_SIZE": str(world), "GROUP_RANK": "0", "ROLE_RANK": str(rank), "ROLE_WORLD_SIZE": str(world),
            "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes whose process group is `pgid`, from /proc."""
    members = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as handle:
                fields = handle.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != b"Z":
            members.append(int(entry.name))
    return members


def _die_with_parent() -> None:
    """In the child before exec: SIGKILL when the supervising thread dies, so no trainer outlives it."""
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


_libc = ctypes.CDLL(None, use_errno=True)


class Supervisor:
    """Runs one claimed attempt to its end; `run()` returns the status the run was left in."""

    def __init__(self, run: Run, worker: Worker, cfg: WorkerConfig, *,
                 should_drain: Callable[[], bool] = lambda: False):
        self.run_id, self.attempt, self.worker_id, self.worker_name = run.id, run.attempt, worker.id, worker.name
        self.run_obj = run
        self.cfg = cfg
        self.should_drain = should_drain
        self.run_dir = run_directory(run)
        self.tail = EventTail()
        self.proc: subprocess.Popen | None = None  # rank 0; its pid is the group's id
        self.procs: list[subprocess.Popen] = []  # every rank
        self.rank_failure: tuple[int, int] | None = None  # (rank, exit code) that took the run down
        self.stop_reason = ""  # cancel | drain | lost
        self.kill_at: float | None = None
        self.accounted_at = 0.0
        self.next_heartbeat = 0.0
        self.db_down_since: float | None = None
        # a chain run: its stages' events go to one child run each (lab.services.chains)
        self.chain = ChainTails() if run.kind == CHAIN_KIND else None
        self.commit = git_head(Path(__file__).resolve().parent) if self.chain is not None else None

    # --- the attempt -------------------------------------------------------------------------
    def run(self) -> str:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        lock = self._lock_run_dir()
        if lock is None:
            return self._finish_with(lambda: requeue_run(
                self.run_id, self.attempt, reason="previous trainer still holds the run directory"))
        try:
            try:
                self._start()
            except InputError as exc:  # a deleted dataset, a rotated checkpoint: nothing to retry
                return self._end(RunStatus.FAILED, f"cannot start: {exc}")
            while True:
                rc = self._poll()
                self._tick()
                if rc is not None:
                    break
                time.sleep(self.cfg.poll_s)
            self._reap_group()
            return self._finish(rc)
        finally:
            os.close(lock)
            close_old_connections()

    def _start(self) -> None:
        cmd, ranks = trainer_launch(self.run_obj, self.run_dir, self.cfg)
        log = open(self.run_dir / "trainer.log", "ab")
        log.write(f"=== attempt {self.attempt} on {self.worker_name} at {timezone.now().isoformat()}: "
                  f"{' '.join(cmd)}{f' × {ranks} ranks' if ranks > 1 else ''}\n".encode())
        log.flush()
        env = {**os.environ, "OMP_NUM_THREADS": str(self.cfg.trainer_threads), "PYTHONUNBUFFERED": "1",
               "R1LAB_RUN_ID": str(self.run_id), "R1LAB_ATTEMPT": str(self.attempt)}
        gpus = self.run_obj.gpu_count
        devices = visible_gpus(Worker.objects.filter(id=self.worker_id).values_list("capabilities", flat=True).first(), gpus)
        if devices is not None:
            env["CUDA_VISIBLE_DEVICES"] = devices
        port = _free_port() if ranks > 1 else 0
        with log:
            for rank in range(ranks):
                # one trainer leads a new session; several ranks share a new process group, rank 0's
                # (a process can join a group of its own session only, so not a new session here)
                group = ({"start_new_session": True} if ranks == 1 else
                         {"process_group": self.procs[0].pid if rank else 0})
                try:
                    self.procs.append(subprocess.Popen(
                        cmd, cwd=self.run_dir, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                        env=rank_env(env, rank, ranks, port), preexec_fn=_die_with_parent,
                        pass_fds=(self.lock_fd,), **group,
                    ))
                except BaseException:
                    if self.procs:
                        os.killpg(self.procs[0].pid, signal.SIGKILL)
                    raise
        self.proc = self.procs[0]
        (self.run_dir / "supervisor.json").write_text(json.dumps(
            {"pid": self.proc.pid, "pgid": self.proc.pid, "attempt": self.attempt, "worker": self.worker_name,
             "ranks": [p.pid for p in self.procs], "cuda_visible_devices": devices}))
        self.accounted_at = time.monotonic()
        now = timezone.now()
        self._db(lambda: Run.objects.filter(id=self.run_id, attempt=self.attempt, status=RunStatus.STARTING).update(
            status=RunStatus.RUNNING, started_at=Coalesce(F("started_at"), now), run_dir=str(self.run_dir),
            heartbeat_at=now))
        logger.info("run %s attempt %s: trainer pid %s started (%s rank%s): %s", self.run_id, self.attempt,
                    self.proc.pid, ranks, "" if ranks == 1 else "s", cmd)

    def _poll(self) -> int | None:
        """The attempt's exit code once every rank has exited, else None. The first poll that sees a rank
        exit non-zero SIGKILLs the others, and that rank's code becomes the attempt's (one killed by a
        signal or asking to be run again first: a peer's error is often only the lost connection to it)."""
        codes = [p.poll() for p in self.procs]
        if self.rank_failure is None and len(codes) > 1:
            failed = [(rank, rc) for rank, rc in enumerate(codes) if rc not in (None, 0)]
            if failed:
                retryable = [f for f in failed if f[1] < 0 or f[1] in RETRYABLE_EXIT_CODES]
                self.rank_failure = (retryable or failed)[0]
                rank, rc = self.rank_failure
                logger.warning("run %s: rank %s of %s exited (%s); SIGKILL to the other ranks", self.run_id, rank,
                               len(codes), f"signal {signal.Signals(-rc).name}" if rc < 0 else f"code {rc}")
                self._signal(signal.SIGKILL)
        if any(rc is None for rc in codes):
            return None
        if self.rank_failure is not None:
            return self.rank_failure[1]
        return next((rc for rc in codes if rc != 0), 0)

    def _tick(self) -> None:
        """One poll: events in, heartbeat out, react to cancel / shutdown / lost claim, escalate a stop."""
        self._db(lambda: ingest_events(self.run_obj, self.run_dir / "events.jsonl", tail=self.tail,
                                       max_events=INGEST_PER_POLL))
        if self.chain is not None:
            self._db(lambda: chain_sync(self.run_obj, self.run_dir, self.chain, attempt=self.attempt,
                                        commit=self.commit))
        now = time.monotonic()
        if now >= self.next_heartbeat and self._db(self._heartbeat) is not None:
            self.next_heartbeat = now + self.cfg.heartbeat_s
        status = self._db(lambda: Run.objects.filter(id=self.run_id).values_list("status", "attempt").first()
                          or ("deleted", -1))
        if status is not None and (status[1] != self.attempt or status[0] not in
                                   (RunStatus.STARTING, RunStatus.RUNNING, RunStatus.CANCELLING)):
            self._stop("lost")
        elif status is not None and status[0] == RunStatus.CANCELLING:
            self._stop("cancel")
        elif self.should_drain():
            self._stop("drain")
        if self.kill_at is not None and time.monotonic() >= self.kill_at and any(p.poll() is None for p in self.procs):
            logger.warning("run %s: trainer still alive %.0fs after SIGTERM; SIGKILL", self.run_id,
                           self.cfg.cancel_grace_s)
            self._signal(signal.SIGKILL)
            self.kill_at = None

    def _heartbeat(self) -> int:
        elapsed = time.monotonic() - self.accounted_at
        changed = Run.objects.filter(id=self.run_id, attempt=self.attempt, worker_id=self.worker_id).update(
            heartbeat_at=timezone.now(), compute_seconds=F("compute_seconds") + elapsed)
        self.accounted_at += elapsed
        if changed == 0:
            self._stop("lost")
        return changed

    # --- stopping ----------------------------------------------------------------------------
    def _stop(self, reason: str) -> None:
        if self.stop_reason == reason or self.stop_reason == "lost" or all(p.poll() is not None for p in self.procs):
            return
        first = not self.stop_reason
        self.stop_reason = reason
        if reason == "lost":
            logger.warning("run %s attempt %s: claim lost to another attempt; killing the trainer",
                           self.run_id, self.attempt)
            self._signal(signal.SIGKILL)
        elif first:
            logger.info("run %s: %s; SIGTERM to the trainer, %ss to checkpoint", self.run_id, reason,
                        self.cfg.cancel_grace_s)
            self._signal(signal.SIGTERM)
            self.kill_at = time.monotonic() + self.cfg.cancel_grace_s

    def _signal(self, signum: int) -> None:
        try:
            os.killpg(self.proc.pid, signum)
        except ProcessLookupError:
            pass

    def _reap_group(self) -> None:
        """The trainer has exited: SIGKILL whatever it left in its group, wait until the group is empty."""
        self._signal(signal.SIGKILL)
        deadline = time.monotonic() + 10
        while group_members(self.proc.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        left = group_members(self.proc.pid)
        if left:
            logger.error("run %s: processes %s of the trainer's group survived SIGKILL", self.run_id, left)

    # --- the end of the attempt --------------------------------------------------------------
    def _finish(self, rc: int) -> str:
        self._db_retry(lambda: ingest_events(self.run_obj, self.run_dir / "events.jsonl", tail=self.tail, final=True))
        chain = None
        if self.chain is not None and self.stop_reason != "lost":
            chain = self._db_retry(lambda: chain_sync(self.run_obj, self.run_dir, self.chain, final=True,
                                                      attempt=self.attempt, commit=self.commit)) or {}
        self._db_retry(lambda: self._heartbeat() if self.stop_reason != "lost" else 0)
        if self.stop_reason == "lost":
            return "lost"
        run = self._db_retry(lambda: Run.objects.filter(id=self.run_id).values("status", "attempt", "phase").first())
        if run is None or run["attempt"] != self.attempt:
            return "lost"
        if self.stop_reason == "cancel" or run["status"] == RunStatus.CANCELLING:
            return self._end(RunStatus.CANCELLED, "cancelled", statuses=(RunStatus.CANCELLING,))
        if self.stop_reason == "drain":
            return self._finish_with(self._requeue_drained)
        if chain is not None and rc in (0, 1) and chain.get("status") in ("completed", "failed"):
            if chain["status"] == "completed" and rc == 0:
                return self._end(RunStatus.COMPLETED, "")
            # a stage failed: chain.json names it and why; Resume re-runs the chain from that stage
            return self._end(RunStatus.FAILED, redact_paths(chain.get("reason") or "a stage failed"))
        if rc == 0 and run["phase"] in DONE_PHASES:
            status = self._end(RunStatus.COMPLETED, "")
            if status == RunStatus.COMPLETED:
                self._register_rollouts()
            return status
        if rc == 0:
            return self._end(RunStatus.FAILED, "trainer exited without reporting done:\n" + self._log_tail())
        who = f"rank {self.rank_failure[0]} of {len(self.procs)}" if self.rank_failure else "trainer"
        if rc < 0 or rc in RETRYABLE_EXIT_CODES:
            cause = f"{who} killed by {signal.Signals(-rc).name}" if rc < 0 else f"{who} exited with {rc}"
            return self._finish_with(lambda: requeue_run(self.run_id, self.attempt, reason=cause))
        return self._end(RunStatus.FAILED, f"{who} exited with code {rc}:\n" + self._log_tail())

    def _register_rollouts(self) -> None:
        """A completed rejection-sampling run's accepted samples become a team dataset."""
        try:
            dataset = self._db_retry(lambda: rejection_sampling_dataset_create(Run.objects.get(id=self.run_id)))
        except Exception:  # the run is complete either way; say why the dataset is missing
            logger.exception("run %s: could not register its rollouts as a dataset", self.run_id)
            return
        if dataset is not None:
            logger.info("run %s: %s rows of accepted rollouts saved as dataset %s v%s", self.run_id,
                        dataset.row_count, dataset.name, dataset.version)

    def _end(self, status: str, message: str, statuses=(RunStatus.STARTING, RunStatus.RUNNING)) -> str:
        now = timezone.now()

        @transaction.atomic
        def write():
            changed = Run.objects.filter(id=self.run_id, attempt=self.attempt, status__in=statuses).update(
                status=status, finished_at=now, message=message[-4000:], heartbeat_at=now,
                eta_s=0.0 if status == RunStatus.COMPLETED else None)
            self._free_slot()
            return changed

        changed = self._db_retry(write)
        if changed and self.chain is not None:  # the stage that was running ends with its chain
            self._db_retry(lambda: settle_stage_runs(self.run_id, status, message[-4000:]))
        logger.info("run %s attempt %s: %s %s", self.run_id, self.attempt, status, message[:200])
        return status if changed else "lost"

    def _finish_with(self, action) -> str:
        status = self._db_retry(action)
        self._db_retry(self._free_slot)
        return status or "lost"

    def _requeue_drained(self) -> str:
        """A worker shutting down gives its run back; a graceful stop does not use up an attempt."""
        changed = Run.objects.filter(id=self.run_id, attempt=self.attempt,
                                     status__in=(RunStatus.STARTING, RunStatus.RUNNING)).update(
            status=RunStatus.QUEUED, worker=None, heartbeat_at=None, attempt=F("attempt") - 1,
            message="worker shut down; requeued")
        if changed:
            self._free_slot()
            dispatch_run(self.run_id)
            return RunStatus.QUEUED
        return ""

    def _free_slot(self) -> None:
        Worker.objects.filter(id=self.worker_id, current_run_id=self.run_id).update(
            current_run=None, idle_since=timezone.now())

    def _log_tail(self, lines: int = 20) -> str:
        try:
            with open(self.run_dir / "trainer.log", "rb") as handle:
                handle.seek(0, os.SEEK_END)
                handle.seek(max(0, handle.tell() - 16384))
                text = handle.read().decode("utf-8", "replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    # --- plumbing ----------------------------------------------------------------------------
    def _lock_run_dir(self) -> int | None:
        """An exclusive lock on the run directory, shared with the trainer (it inherits the descriptor)."""
        fd = os.open(self.run_dir / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + LOCK_WAIT_S
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                self.lock_fd = fd
                return fd
            except BlockingIOError:
                if time.monotonic() > deadline:
                    os.close(fd)
                    return None
                # waiting is not dying: keep the claim's heartbeat fresh for the reapers
                self._db(lambda: Run.objects.filter(id=self.run_id, attempt=self.attempt).update(
                    heartbeat_at=timezone.now()))
                time.sleep(1.0)

    def _db(self, action):
        """Run a database action; on a database outage log once, keep supervising, return None."""
        try:
            result = action()
        except DatabaseError as exc:
            if self.db_down_since is None:
                self.db_down_since = time.monotonic()
                logger.warning("run %s: database unavailable (%s); the trainer goes on, events wait in the file",
                               self.run_id, exc)
            connection.close()
            return None
        if self.db_down_since is not None:
            logger.info("run %s: database back after %.1fs", self.run_id, time.monotonic() - self.db_down_since)
            self.db_down_since = None
        return result

    def _db_retry(self, action, timeout_s: float = 600.0):
        """The end of an attempt must be written: retry through a database outage (bounded)."""
        deadline = time.monotonic() + timeout_s
        delay = 0.2
        while True:
            try:
                return action()
            except DatabaseError as exc:
                connection.close()
                if time.monotonic() > deadline:
                    logger.error("run %s: database unavailable for %.0fs; giving up (%s)", self.run_id, timeout_s, exc)
                    return None
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
