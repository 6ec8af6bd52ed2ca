"""Flow jobs of the density sweep: generated designs, tool runs, the result cache, executors.

A *unit* is one generated design (:func:`elaborate_unit`); a *job* is one tool run on it,
Yosys synthesis (:func:`flows.synth.synthesize`) or, on ECP5, synthesis with placement and
routing (:func:`flows.pnr.place_and_route`). :func:`run_jobs` looks every job up in a
:class:`flows.cache.ResultCache` first and sends the rest to a
:class:`concurrent.futures.Executor`: a local thread pool (each job runs its tools as
subprocesses, so threads are enough) or a Dask cluster's executor (:func:`dask_executor`).
Both go through the same ``submit`` / ``as_completed`` loop, and every result comes back
into the local cache as soon as it is done, so an interrupted sweep resumes.

A job carries everything it needs (the Verilog text, the options) and runs in a temporary
folder of its own, so it can run on any machine with this package and the same tools.
:func:`run_jobs` refuses a result made with other tool versions than the local ones,
since the cache key names the local versions.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib.metadata
import importlib.util
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor, as_completed
from pathlib import Path

from .cache import ResultCache, result_key, source_digest
from .pnr import nextpnr_version, place_and_route
from .synth import synth_command, synthesize, yosys_version

__all__ = ["Job", "Unit", "dask_executor", "elaborate_chain", "elaborate_unit", "hw_digest",
           "job_key", "run_job", "run_jobs", "synthesize_design", "tool_versions",
           "unit_available"]

REPO = Path(__file__).resolve().parent.parent

#: Seconds :func:`dask_executor` waits for the scheduler to answer.
DASK_CONNECT_TIMEOUT_S = 10


@dataclasses.dataclass(frozen=True)
class Unit:
    """A generated design to synthesise: its module name, its Verilog and MACs per cycle."""

    name: str
    verilog: str
    macs: int


def hw_digest() -> str:
    """Digest of everything that decides generated Verilog: hw/, golden/, Amaranth."""
    return hashlib.sha256((source_digest(REPO / "hw", REPO / "golden") + "\0"
                           + importlib.metadata.version("amaranth")).encode()).hexdigest()


def elaborate_unit(cache: ResultCache | None, top: str, params: dict, digest: str) -> Unit:
    """``hw.generate.elaborate(top, **params)``, through ``cache`` when given (keyed by
    ``digest``, :func:`hw_digest`).

    Raises
    ------
    TypeError, ValueError
        If the generator refuses the parameters.
    """
    def build() -> Unit:
        from hw.generate import emit
        from hw.unit import unit as registered

        spec = registered(top)
        record = spec.record(**params)
        design = emit(spec, record)
        return Unit(design.name, design.verilog, spec.macs(record))

    key = result_key(verilog="", flow=f"elaborate {top}", options=params,
                     tools={"hw": digest})
    return _cached_unit(cache, key, build)


def elaborate_chain(cache: ResultCache | None, dot: dict, accum: dict, digest: str) -> Unit:
    """:func:`flows.chain.chain_design` of ``dot`` feeding ``accum`` (keyword arguments of
    the two units) as one :class:`Unit` of the dot product's MACs per cycle, through
    ``cache`` when given (keyed by ``digest`` and by the code of :mod:`flows.chain`).

    Raises
    ------
    TypeError, ValueError
        If the generator refuses the parameters, or they differ between the two units.
    """
    def build() -> Unit:
        from hw.unit import unit as registered

        from .chain import chain_design

        design = chain_design(dot, accum)
        spec = registered("dot")
        return Unit(design.name, design.verilog, spec.macs(spec.record(**dot)))

    key = result_key(verilog="", flow="elaborate chain", options={"dot": dot, "accum": accum},
                     tools={"hw": digest, "chain": source_digest(REPO / "flows" / "chain.py")})
    return _cached_unit(cache, key, build)


def _cached_unit(cache: ResultCache | None, key: str, build) -> Unit:
    """The :class:`Unit` stored in ``cache`` under ``key``, or ``build()``'s, stored there."""
    if cache is not None:
        hit = cache.get(key)
        if hit is not None:
            return Unit(hit["name"], hit["verilog"], hit["macs"])
    unit = build()
    if cache is not None:
        cache.put(key, dataclasses.asdict(unit))
    return unit


def unit_available(top: str, module: str) -> str | None:
    """``None`` if the unit registry offers ``top``; otherwise why not."""
    from hw.unit import units

    if top in units():
        return None
    return f"hw/{module}.py (--top {top}) is not written yet"


@dataclasses.dataclass(frozen=True)
class Job:
    """One tool run: synthesis of ``unit`` for ``target`` with ``mode`` ``"lut"`` (DSP
    cells forbidden) or ``"dsp"``; with ``pnr`` (ECP5 only), placement and routing too, at
    ``freq`` MHz and placement ``seed`` (both 0 without ``pnr``)."""

    unit: Unit
    target: str
    mode: str
    pnr: bool
    freq: float
    seed: int

    @property
    def label(self) -> str:
        return f"{self.unit.name} {self.target} {self.mode}{' pnr' if self.pnr else ''}"


def tool_versions(*, pnr: bool) -> dict[str, str]:
    """The version lines a job depends on: Yosys, and nextpnr if it places and routes."""
    tools = {"yosys": yosys_version()}
    if pnr:
        tools["nextpnr"] = nextpnr_version()
    return tools


def _flow_digest() -> str:
    return source_digest(REPO / "flows" / "synth.py", REPO / "flows" / "pnr.py")


def job_key(job: Job, tools: Mapping, flow_digest: str) -> str:
    """The cache key of ``job``: its Verilog, the tool commands, ``flow_digest`` (the
    sources of flows/synth.py and flows/pnr.py), its options and the ``tools`` versions."""
    dsp = job.mode == "dsp"
    flow = synth_command(job.unit.name, target=job.target, dsp=dsp)
    options = {"target": job.target, "dsp": dsp, "top": job.unit.name}
    if job.pnr:
        flow += " | nextpnr-ecp5"
        options.update(freq_mhz=job.freq, seed=job.seed)
    return result_key(verilog=job.unit.verilog, flow=f"{flow} | {flow_digest}",
                      options=options, tools=tools)


def _write_source(unit: Unit, folder: Path) -> Path:
    """``folder/<module>.v`` holding the unit's Verilog, written only if it differs (jobs
    sharing a work folder read it while others start)."""
    source = folder / f"{unit.name}.v"
    if not (source.is_file() and source.read_text(encoding="utf-8") == unit.verilog):
        source.write_text(unit.verilog, encoding="utf-8")
    return source


def run_job(job: Job, workdir: Path | None = None) -> dict:
    """Run the tools of ``job`` and return their result.

    ``workdir``, if given, keeps the Verilog (``<module>.v``) and, in
    ``<target>-<mode>/``, the scripts, logs and reports; otherwise a temporary folder of
    the machine that runs the job is used and removed.
    """
    place = (tempfile.TemporaryDirectory(prefix="mxforge-job-") if workdir is None
             else contextlib.nullcontext(workdir))
    with place as where:
        folder = Path(where)
        folder.mkdir(parents=True, exist_ok=True)
        source = _write_source(job.unit, folder)
        work = folder / f"{job.target}-{job.mode}{'-pnr' if job.pnr else ''}"
        if job.pnr:
            return place_and_route(source, job.unit.name, dsp=job.mode == "dsp",
                                   freq_mhz=job.freq, seed=job.seed, workdir=work)
        return synthesize(source, job.unit.name, target=job.target, dsp=job.mode == "dsp",
                          workdir=work)


def _check_versions(job: Job, result: Mapping, tools: Mapping) -> None:
    found = {"yosys": result.get("yosys_version")}
    if job.pnr:
        found["nextpnr"] = result.get("pnr", {}).get("nextpnr_version")
    for tool, version in found.items():
        if version != tools[tool]:
            raise RuntimeError(
                f"{job.label} ran with {tool} {version!r}, not the local {tools[tool]!r}; "
                "install the same tool versions on every Dask worker (pip install the same "
                "mxforge)")


@contextlib.contextmanager
def dask_executor(address: str, *, timeout: float | None = None) -> Iterator[Executor]:
    """A :class:`concurrent.futures.Executor` that runs jobs on the Dask cluster whose
    scheduler listens at ``address`` (``tcp://host:8786``, or a ``LocalCluster``'s
    ``scheduler_address``); the client is closed on exit. Every worker needs this package
    and the same Yosys and nextpnr.

    Raises
    ------
    ConnectionError
        If the scheduler does not answer within ``timeout`` seconds (by default
        :data:`DASK_CONNECT_TIMEOUT_S`), or ``address`` is not an address.
    """
    from distributed import Client

    class _Client(Client):
        """A client that closes itself when it cannot connect: otherwise its finaliser
        tries again at exit, waits 20 s and prints a traceback."""

        def start(self, **kwargs) -> None:
            try:
                super().start(**kwargs)
            except BaseException:
                with contextlib.suppress(Exception):
                    self.close(timeout=1)
                raise

    try:
        client = _Client(address, set_as_default=False,
                        timeout=DASK_CONNECT_TIMEOUT_S if timeout is None else timeout)
    except (OSError, TimeoutError, ValueError, TypeError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConnectionError(f"cannot reach the Dask scheduler at --scheduler {address}: "
                              f"{reason}") from None
    with client:
        # pure=False: every submission is a task of its own; reuse is the local cache's call.
        yield client.get_executor(pure=False)


def run_jobs(jobs: Sequence[Job], cache: ResultCache | None, *, workers: int = 1,
             executor: Executor | None = None, progress: bool = False,
             stats: dict | None = None, workdir: Path | None = None,
             done: Callable[[Job, dict], None] | None = None) -> dict[Job, dict]:
    """Results of ``jobs``, from ``cache`` or by running their tools.

    Parameters
    ----------
    jobs : sequence of Job
        What to run; equal jobs run once.
    cache : ResultCache or None
        Looked up first; every new result is put there as soon as it arrives.
    workers : int
        Jobs run at once by the local thread pool, when ``executor`` is not given.
    executor : concurrent.futures.Executor, optional
        Where jobs run instead (for example :func:`dask_executor`'s); left open.
    progress : bool
        Show a tqdm bar on stderr.
    stats : dict, optional
        Filled with ``tool_runs`` (``len(jobs)``) and ``reused`` (found in the cache).
    workdir : path, optional
        Run every job (the cache is written, not read) in this folder, keeping its files;
        see :func:`run_job`. Only with the local pool.
    done : callable, optional
        Called with each job and its result as it finishes running.

    Raises
    ------
    ValueError
        If both ``workdir`` and ``executor`` are given.
    RuntimeError
        If a tool fails, or a result was made with other tool versions than the local ones.
    """
    from tqdm import tqdm

    if workdir is not None and executor is not None:
        raise ValueError("workdir keeps files on this machine; it cannot be given with an "
                         "executor, whose jobs may run elsewhere")
    jobs = list(dict.fromkeys(jobs))
    flow_digest = _flow_digest()
    results: dict[Job, dict] = {}
    todo: list[tuple[Job, str, dict]] = []
    for job in jobs:
        tools = tool_versions(pnr=job.pnr)
        key = job_key(job, tools, flow_digest)
        hit = cache.get(key) if cache is not None and workdir is None else None
        if hit is not None:
            results[job] = hit
        else:
            todo.append((job, key, tools))
    if stats is not None:
        stats.update(tool_runs=len(jobs), reused=len(jobs) - len(todo))
    if not todo:
        return results
    bar = tqdm(total=len(jobs), initial=len(jobs) - len(todo), unit="run",
               desc="density sweep", disable=not progress, file=sys.stderr,
               dynamic_ncols=True)
    pool = (contextlib.nullcontext(executor) if executor is not None
            else ThreadPoolExecutor(max_workers=max(1, min(workers, len(todo)))))
    if workdir is not None:
        workdir.mkdir(parents=True, exist_ok=True)
        for job, _, _ in todo:
            _write_source(job.unit, workdir)
    with bar, pool as runner:
        # Largest designs first, so the slowest runs do not start last.
        order = sorted(todo, key=lambda item: -len(item[0].unit.verilog))
        futures = {runner.submit(run_job, job, workdir): (job, key, tools)
                   for job, key, tools in order}
        try:
            for future in as_completed(futures):
                job, key, tools = futures[future]
                result = future.result()
                _check_versions(job, result, tools)
                results[job] = result
                if cache is not None:
                    cache.put(key, result)  # kept at once: an interrupted sweep resumes
                if done is not None:
                    done(job, result)
                bar.set_postfix_str(job.label, refresh=False)
                bar.update()
        except BaseException:
            for future in futures:
                future.cancel()
            raise
    return results


def synthesize_design(name: str, verilog: str, configs: Sequence[tuple[str, bool]], *,
                      cache: ResultCache | None, workers: int = 1,
                      workdir: Path | None = None,
                      done: Callable[[dict], None] | None = None) -> list[dict]:
    """Yosys results of one design for each ``(target, dsp)`` of ``configs``, in that
    order, through the same jobs and cache as ``python -m flows.density`` (which is how
    ``python -m flows.report`` synthesises).

    Parameters
    ----------
    name, verilog : str
        Top module name and Verilog text of the design.
    configs : sequence of (str, bool)
        Target family and whether DSP cells are allowed.
    cache : ResultCache or None
        Results looked up and kept; ``None`` runs every synthesis.
    workers : int
        Syntheses run at once.
    workdir : path, optional
        Keep the Verilog and each run's files there; every run is then made afresh.
    done : callable, optional
        Called with each result that had to be run, as it finishes.

    Returns
    -------
    list of dict
        :func:`flows.synth.synthesize`'s result per configuration.
    """
    unit = Unit(name, verilog, 1)
    jobs = [Job(unit, target, "dsp" if dsp else "lut", False, 0.0, 0)
            for target, dsp in configs]
    results = run_jobs(jobs, cache, workers=workers, workdir=workdir,
                       done=None if done is None else lambda job, result: done(result))
    return [dict(results[job]) for job in jobs]
