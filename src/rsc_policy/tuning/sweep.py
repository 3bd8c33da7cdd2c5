"""The sweep driver: Ray Tune over :func:`rsc_policy.tuning.trial.run_trial`, trial rows in the
database (from this process only), and the best configuration's one score on the test period.

Layout of a sweep directory: ``sweep.json`` (settings, space, ids: what ``--resume`` reads),
``tune/`` (Ray Tune's experiment: trial results and checkpoints), ``rsc.sqlite`` (unless
``--db``), ``report.md`` and its PNGs.
"""

from __future__ import annotations

import json
import math
import os
import signal
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ray import tune

from rsc_cli.errors import EXIT_SIGINT, EXIT_SIGTERM, UserError, sigterm_received
from rsc_db.sweeps import SweepStore
from rsc_policy.tuning.space import METRICS, SearchSpace

SWEEP_FILE = "sweep.json"
TUNE_DIR = "tune"


def build_context(space: SearchSpace, opts: Mapping[str, Any]) -> dict[str, Any]:
    """Everything a trial needs (plain, picklable): folds, seeds, episodes, env and agent
    defaults. Reads the data and cuts the folds here, so a bad file or fold size is a
    :class:`UserError` before Ray starts."""
    from rsc_env import MarketDataError, prepare_market_data
    from rsc_policy.evaluation.walkforward import make_folds
    from rsc_policy.settings import AGENT_DEFAULTS, ENV_DEFAULTS

    try:
        table = prepare_market_data(opts["data"], date_format=opts.get("date_format"))
        folds, test = make_folds(table.index, train_years=opts["train_years"],
                                 validation_years=opts["validation_years"],
                                 step_years=opts["step_years"], test_years=opts["test_years"])
    except (MarketDataError, ValueError, FileNotFoundError) as exc:
        raise UserError(str(exc)) from None
    import dataclasses

    from rsc_policy.agent.params import AgentParams

    trainer_args = {f.name for f in dataclasses.fields(AgentParams)}
    for name, p in space.params.items():
        if p.group == "agent" and name not in trainer_args:
            raise UserError(f"search space {space.source}: agent.{name} is not a parameter of "
                            "the sequential trainer (rsc_policy.agent.sequential.AgentParams)")
    before = table.index[table.index < test[0]]
    day = lambda t: str(t.date())  # noqa: E731
    base = {"data": opts["data"], **ENV_DEFAULTS,
            **({"date_format": opts["date_format"]} if opts.get("date_format") else {})}
    ctx = {
        "base_env": base,
        "agent_defaults": {k: v for k, v in AGENT_DEFAULTS.items() if k in trainer_args},
        "groups": {n: p.group for n, p in space.params.items()},
        "folds": [(day(f.train_start), day(f.train_end), day(f.val_start), day(f.val_end))
                  for f in folds],
        "seeds": list(range(opts["seeds"])), "episodes": opts["episodes"],
        "metric": opts["metric"], "mode": METRICS[opts["metric"]],
        "final_train": (day(before[0]), day(before[-1])), "test": (day(test[0]), day(test[1])),
        "env_copies": int(opts.get("env_copies", 1)), "fragment": POPULATION_FRAGMENT,
        "engine": opts.get("engine") or "rllib",
        "configs_per_trial": int(opts.get("configs_per_trial", 1)),
        "planted": list(opts.get("planted") or []),
        "planted_env_steps": int(opts.get("planted_env_steps", 20_000)),
    }
    return {**ctx, **sweep_constants(ctx)}


#: Steps per member env between learning rounds of a trial's population (throughput mode).
POPULATION_FRAGMENT = 32
#: Random policies per validation window (each run's percentile among them is reported).
RANDOM_POLICIES = 100


def sweep_constants(ctx: Mapping[str, Any]) -> dict[str, Any]:
    """What no trial changes, computed once per sweep: the trial population's members, one
    episode's env steps (the longest training window: a trial's round), and buy-and-hold and
    the metric of ``RANDOM_POLICIES`` random policies on each validation window (with the
    base env settings)."""
    from rsc_env import TradingEnv
    from rsc_policy.evaluation.benchmarks import random_draws
    from rsc_policy.tuning.trial import trial_members, window_buy_and_hold

    base = ctx["base_env"]
    lengths = [TradingEnv({**base, "start": f[0], "end": f[1]}).episode_length
               for f in ctx["folds"]]
    windows = [{**base, "start": f[2], "end": f[3]} for f in ctx["folds"]]
    return {"members": trial_members(ctx), "round_steps": int(max(lengths)),
            "fold_buy_and_hold": [window_buy_and_hold(w) for w in windows],
            "fold_random": [random_draws(w, RANDOM_POLICIES)[ctx["metric"]].tolist()
                            for w in windows]}


class Recorder(tune.Callback):
    """Writes trial rows as Tune reports them (driver side) and prints one line per finished
    trial. ``stop_after``: a test hook that sends this process SIGINT (a Ctrl-C) once that
    many trials have finished here; it is not pickled, so a resumed sweep does not stop."""

    def __init__(self, store: SweepStore, ctx: Mapping[str, Any], samples: int,
                 stop_after: int | None = None, metrics_path: Path | None = None) -> None:
        self.store, self.ctx, self.samples, self.stop_after = store, dict(ctx), samples, \
            stop_after
        self.finished_here = 0
        self.metrics_path = metrics_path  # one JSON line per trial result (tracking)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "stop_after": None, "finished_here": 0, "relayed": False}

    def on_step_begin(self, iteration: int, trials: list, **info: Any) -> None:
        # SIGTERM raises in whatever the main thread runs; code that swallows it (seen once in
        # CI: the sweep ran to its end) must not lose it: stop the way Ctrl-C stops Tune.
        if sigterm_received() and not getattr(self, "relayed", False):
            self.relayed = True
            os.kill(os.getpid(), signal.SIGINT)

    def _configs(self, trial: Any) -> list[tuple[str, dict[str, Any]]]:
        """``(row id, configuration)`` of each configuration the trial trains: the trial's own
        (its Tune id), or with ``configs_per_trial`` G > 1 its G configurations
        ``<trial id>-c<j>``, each one row of the sweep (its own params and figures)."""
        return [(row_id(trial.trial_id, j, self.ctx), config)
                for j, config in enumerate(trial_configs(trial.config, self.ctx))]

    def _run_parameters(self, row: str, config: Mapping[str, Any]) -> dict[str, Any]:
        from rsc_policy.tuning.trial import split_config

        env, agent = split_config(config, self.ctx)
        return {"trainer": "population", "sweep_id": self.store.sweep_id,
                "trial_id": row, "env": env, "agent": agent,
                "folds": self.ctx["folds"], "seeds": self.ctx["seeds"],
                "episodes": self.ctx["episodes"]}

    def _params(self, config: Mapping[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in config.items() if k in self.ctx["groups"]}

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        for row, config in self._configs(trial):
            self.store.trial(row, "running", params=self._params(config),
                             run_parameters=self._run_parameters(row, config), started=True)

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict,
                        **info: Any) -> None:
        from rsc_policy.tracking import flatten

        path = getattr(self, "metrics_path", None)  # TensorBoard: Tune writes under tune/
        for (row, config), own in zip(self._configs(trial), config_results(result),
                                      strict=True):
            self.store.trial(row, "running", **_fields(own))
            if path is not None:
                line = {"trial_id": row, "params": self._params(config),
                        **{k: (None if math.isnan(v) else v)
                           for k, v in flatten(own).items()}}
                with Path(path).open("a") as sink:
                    sink.write(json.dumps(line) + "\n")

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        results = config_results(trial.last_result or {})
        for (row, config), own in zip(self._configs(trial), results, strict=False):
            done = int(own.get("episodes_done", 0))
            status = "completed" if done >= self.ctx["episodes"] else "stopped"
            self._finish(row, config, status, own)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        results = config_results(trial.last_result or {})
        for j, (row, config) in enumerate(self._configs(trial)):
            self._finish(row, config, "failed", results[j] if j < len(results) else {})

    def _finish(self, row: str, config: Mapping[str, Any], status: str,
                result: Mapping[str, Any]) -> None:
        self.store.trial(row, status, **_fields(result))
        self.finished_here += 1
        n = self.store.count_finished()
        value = result.get("score")
        shown = "n/a" if value is None else f"{value:.3f}"
        params = " ".join(f"{k}={_short(v)}" for k, v in self._params(config).items()
                          if k in self.ctx["searched"])
        collapsed = int(result.get("collapsed_runs", 0))
        note = f", {collapsed} collapsed run(s) (no trade / one action)" if collapsed else ""
        print(f"[{n}/{self.samples}] trial {row} {status}: {self.ctx['metric']} "
              f"{shown} after {result.get('episodes_done', 0)}/{self.ctx['episodes']} episodes"
              f" x {len(self.ctx['folds'])} folds, "
              f"{int(result.get('env_steps', 0)):,} env steps in "
              f"{result.get('trial_time_s', float('nan')):.1f} s{note}  {params}", flush=True)
        if self.stop_after is not None and self.finished_here >= self.stop_after:
            self.stop_after = None
            os.kill(os.getpid(), signal.SIGINT)  # exactly what Ctrl-C does


#: Key prefix of each configuration in a bundled trial's Tune config (``c0``, ``c1``, ...).
CONFIG_KEY = "c"


def bundled(ctx: Mapping[str, Any]) -> int:
    """Configurations per trial (``configs_per_trial``; 1: Tune's trial is one config)."""
    return int(ctx.get("configs_per_trial", 1))


def trial_configs(config: Mapping[str, Any], ctx: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The configurations of a trial's Tune config: itself, or its ``c0``..``c<G-1>``."""
    g = bundled(ctx)
    return [dict(config)] if g == 1 else [dict(config[f"{CONFIG_KEY}{j}"]) for j in range(g)]


def row_id(trial_id: str, j: int, ctx: Mapping[str, Any]) -> str:
    """The sweep row of configuration ``j`` of Tune trial ``trial_id``."""
    return trial_id if bundled(ctx) == 1 else f"{trial_id}-{CONFIG_KEY}{j}"


def config_results(result: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each configuration's result in a trial's report (a bundle reports them as JSON under
    ``configs``; a one-configuration trial's report is its own)."""
    if "configs" in result:
        return list(json.loads(result["configs"]))
    return [dict(result)]


def _short(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _fields(result: Mapping[str, Any]) -> dict[str, Any]:
    if "score" not in result:
        return {}
    return {"metric_value": float(result["score"]),
            "fold_metrics": json.loads(result.get("fold_metrics", "[]")),
            "folds_done": int(result.get("folds_done", 0)),
            "env_steps": int(result.get("env_steps", 0)),
            "wall_time_s": float(result.get("trial_time_s", 0.0))}


def _scheduler(name: str, space: SearchSpace, n_rounds: int) -> Any:
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, PopulationBasedTraining

    if name == "asha":
        return ASHAScheduler(time_attr="training_iteration", max_t=n_rounds, grace_period=1,
                             reduction_factor=2)
    if name == "pbt":
        mutations = {n: p.to_tune() for n, p in space.params.items() if p.kind != "fixed"}
        return PopulationBasedTraining(time_attr="training_iteration", perturbation_interval=1,
                                       hyperparam_mutations=mutations, quantile_fraction=0.5)
    return FIFOScheduler()


def _search(name: str, seed: int, max_concurrent: int) -> Any:
    from ray.tune.search import BasicVariantGenerator

    if name == "optuna":
        from ray.tune.search.optuna import OptunaSearch

        return OptunaSearch(seed=seed)  # metric and mode come from the TuneConfig
    # a SearchGenerator: Tune ignores TuneConfig.max_concurrent_trials for it (it wraps only
    # Searchers such as OptunaSearch in a ConcurrencyLimiter), so the limit goes here
    return BasicVariantGenerator(random_state=seed, max_concurrent=max_concurrent)


def new_settings(space: SearchSpace, opts: Mapping[str, Any], *, scheduler: str, search: str,
                 max_concurrent: int, search_seed: int, db: str | None, sweep_id: str
                 ) -> dict[str, Any]:
    """The sweep's settings (``sweep.json``; the sweep row's settings JSON)."""
    if scheduler == "pbt" and search != "random":
        raise UserError("--scheduler pbt explores by itself: use it with --search random")
    g = int(opts.get("configs_per_trial", 1))
    if g > 1:
        if scheduler != "none" or search != "random":
            raise UserError(
                f"configs_per_trial = {g} trains several configurations in one population "
                f"per trial: it needs --scheduler none and --search random (ASHA and PBT "
                f"stop or copy one configuration, Optuna suggests one at a time); got "
                f"--scheduler {scheduler} --search {search}")
        if opts.get("engine") not in (None, "loop"):
            raise UserError(f"configs_per_trial = {g} runs on --engine loop, got --engine "
                            f"{opts['engine']}")
        if opts["samples"] % g:
            raise UserError(f"samples ({opts['samples']}) must be a multiple of "
                            f"configs_per_trial ({g})")
    return {"sweep_id": sweep_id, "space_file": space.source, "space": space.to_json(),
            **dict(opts), "mode": METRICS[opts["metric"]], "scheduler": scheduler,
            "search": search, "max_concurrent": max_concurrent, "search_seed": search_seed,
            "db": db}


def run(space: SearchSpace, settings: dict[str, Any], out: Path, *, resume: bool = False,
        address: str | None = None, stop_after: int | None = None) -> int:
    """Run (or resume) the sweep in ``out``; return the process exit code (0, or 130/143 if
    Ctrl-C/SIGTERM interrupted it: finished trials are kept and ``--resume`` continues)."""
    from rsc_db.engine import resolve_url
    from rsc_policy.common import make_run_dir, start_ray, stop_ray

    ctx = build_context(space, {**settings, "engine": trial_engine(settings)})
    ctx["searched"] = space.searched
    ctx["report_rounds"] = settings["scheduler"] != "none"  # ASHA, PBT read every round
    created = make_run_dir(out, "--resume" if resume else "--out", allow_existing=resume)
    url = resolve_url(settings.get("db"), out)
    store = SweepStore(url, settings["sweep_id"])
    try:
        store.start(space.to_json(), settings)  # checks the database before Ray starts
    except BaseException:
        store.close()
        if created and out.is_dir() and not any(out.iterdir()):
            out.rmdir()  # no empty sweep directory left behind
        raise
    (out / SWEEP_FILE).write_text(json.dumps(settings, indent=2, default=str))
    print(f"sweep {settings['sweep_id']}: {settings['samples']} samples x {len(ctx['folds'])} "
          f"folds x {len(ctx['seeds'])} seeds, {settings['scheduler']} / {settings['search']}, "
          f"test period {ctx['test'][0]}..{ctx['test'][1]} held out; in {out}", flush=True)
    t0 = time.perf_counter()
    started = start_ray(address)
    try:
        results = _fit(space, settings, ctx, store, out, resume, stop_after)
        tuning_s = time.perf_counter() - t0
        rows = store.trials()
        finished = [r for r in rows if r["status"] in ("completed", "stopped", "failed")]
        if len(finished) < settings["samples"] or not len(results) or sigterm_received():
            store.finish("interrupted")
            _write_report(out, settings, ctx, rows, None, tuning_s)
            print(f"interrupted: {len(finished)} of {settings['samples']} trials finished and "
                  f"kept; continue with: rsc-tune --resume {out}", flush=True)
            return EXIT_SIGTERM if sigterm_received() else EXIT_SIGINT
        best = _best(rows, ctx)
        final = final_test(best, ctx, store) if best is not None else None
        store.finish("completed", best_trial_id=best["trial_id"] if best else None,
                     verdict=final["verdict"] if final else None)
    except Exception:
        store.finish("failed")
        raise
    except BaseException:  # a second Ctrl-C, SIGTERM
        store.finish("interrupted")
        print(f"interrupted: finished trials are kept; continue with: rsc-tune --resume {out}",
              flush=True)
        raise
    finally:
        store.close()
        if started:
            stop_ray()
    report = _write_report(out, settings, ctx, rows, final, time.perf_counter() - t0,
                           tuning_s=tuning_s)
    write_summary(out, settings, rows, tuning_s, time.perf_counter() - t0)
    if final:
        print(final["verdict"]["text"])
    print(f"report: {report}")
    return 0


def trial_engine(settings: Mapping[str, Any]) -> str:
    """``settings["engine"]`` if given; else ``"rllib"`` (the trial's population on
    StrategyAgentAlgo, one round per training episode of every member; ASHA and PBT get a
    report and checkpoint per round, FIFO one at the end), or ``"loop"`` (the plain
    population loop, the same figures bit for bit) for several configurations per trial,
    whose observation sizes may differ."""
    given = settings.get("engine")
    if given:
        return str(given)
    return "loop" if int(settings.get("configs_per_trial") or 1) > 1 else "rllib"


def write_summary(out: Path, settings: Mapping[str, Any], rows: list[dict[str, Any]],
                  tuning_s: float, wall_s: float) -> dict[str, Any]:
    """``summary.json``: the sweep's training env steps, the wall time of the Tune run and
    their rate (rsc-train's summary keys), plus the whole command's wall time. ``env_steps``
    counts every env step the trials trained: ``fold_env_steps`` (all trials, all (fold,
    seed) members) plus ``planted_env_steps`` (the trials' planted checks, ``[sweep]
    planted``); validation and test episodes are not training and not counted."""
    from rsc_policy.tuning.report import trained_env_steps

    folds, planted, _ = trained_env_steps(out, rows)
    steps = folds + planted
    summary = {"sweep_id": settings["sweep_id"], "env_steps": steps, "wall_s": tuning_s,
               "env_steps_per_s": steps / max(tuning_s, 1e-9), "fold_env_steps": folds,
               "planted_env_steps": planted, "command_wall_s": wall_s,
               "trials": len(rows), "scheduler": settings["scheduler"],
               "search": settings["search"], "engine": trial_engine(settings)}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def _fit(space: SearchSpace, settings: Mapping[str, Any], ctx: Mapping[str, Any],
         store: SweepStore, out: Path, resume: bool, stop_after: int | None) -> Any:
    import logging

    from rsc_policy.tuning.trial import run_trial

    for name in ("ray.tune", "ray.train", "ray.air"):
        logging.getLogger(name).setLevel(logging.ERROR)
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    trainable = tune.with_resources(tune.with_parameters(run_trial, ctx=dict(ctx)),
                                    {"cpu": 1})
    path = (out / TUNE_DIR).absolute()
    recorder = Recorder(store, ctx, settings["samples"], stop_after,
                        metrics_path=(out / "metrics.jsonl").absolute())
    if resume and tune.Tuner.can_restore(str(path)):
        # the recorder comes back from the experiment's pickled run config (without the
        # stop_after test hook)
        tuner = tune.Tuner.restore(str(path), trainable=trainable, resume_errored=True,
                                   restart_errored=False)
    else:
        g = bundled(ctx)
        param_space = space.param_space() if g == 1 else {
            f"{CONFIG_KEY}{j}": space.param_space() for j in range(g)}  # each drawn apart
        tuner = tune.Tuner(
            trainable, param_space=param_space,
            tune_config=tune.TuneConfig(
                metric="score", mode=ctx["mode"], num_samples=settings["samples"] // g,
                max_concurrent_trials=settings["max_concurrent"],
                # one process per concurrent trial for the whole sweep: imports and compiled
                # kernels load once, not per trial
                reuse_actors=True,
                scheduler=_scheduler(settings["scheduler"], space, ctx["episodes"]),
                search_alg=_search(settings["search"], settings["search_seed"],
                                   settings["max_concurrent"])),
            run_config=tune.RunConfig(
                name=TUNE_DIR, storage_path=str(out.absolute()), verbose=0,
                callbacks=[recorder],
                # a checkpoint is a few hundred bytes; PBT exploits older ones of the donor
                checkpoint_config=tune.CheckpointConfig(
                    num_to_keep=None if settings["scheduler"] == "pbt" else 2),
                failure_config=tune.FailureConfig(max_failures=0)))
    return tuner.fit()


def _best(rows: list[dict[str, Any]], ctx: Mapping[str, Any]) -> dict[str, Any] | None:
    """The best trial that ran every fold (ASHA-stopped ones saw fewer), else any."""
    def usable(r: Mapping[str, Any]) -> bool:
        return r["metric_value"] is not None and math.isfinite(r["metric_value"])

    full = [r for r in rows if r["status"] == "completed" and usable(r)]
    pool = full or [r for r in rows if r["status"] == "stopped" and usable(r)]
    if not pool:
        return None
    sign = 1.0 if ctx["mode"] == "max" else -1.0
    return max(pool, key=lambda r: sign * r["metric_value"])


def _final_seed(env: dict[str, Any], agent: dict[str, Any], train: tuple[str, str],
                test: tuple[str, str], episodes: int, seed: int,
                random: Mapping[str, Any]) -> dict[str, Any]:
    from rsc_policy.agent.sequential import train_sequential
    from rsc_policy.evaluation.benchmarks import compare
    from rsc_policy.evaluation.learnability import episode_collapse

    res = train_sequential({**env, "start": train[0], "end": train[1]}, episodes=episodes,
                           seed=seed, **agent)
    out = compare(res.agent.greedy, {**env, "start": test[0], "end": test[1]}, random=random)
    log = out.pop("agent_info")["episode_log"]
    out["agent_curve"] = {"date": log["date"], "portfolio_value": log["portfolio_value"]}
    _, out["entries"], out["collapse"] = episode_collapse(log)  # 0 entries: it stayed flat
    out["seed"], out["env_steps"] = seed, res.env_steps
    return out


def final_test(best: Mapping[str, Any], ctx: Mapping[str, Any], store: SweepStore
               ) -> dict[str, Any]:
    """Retrain the best configuration on every bar before the test period, once per seed (in
    parallel Ray tasks), and score each once on the test period against the benchmarks."""
    import ray

    from rsc_policy.tuning.trial import split_config

    env, agent = split_config(best["params"], ctx)
    run_id = f"{store.sweep_id}-final"
    store.open_run(run_id, {"trainer": "sequential", "sweep_id": store.sweep_id,
                            "best_trial_id": best["trial_id"], "env": env, "agent": agent,
                            "train": ctx["final_train"], "test": ctx["test"],
                            "seeds": ctx["seeds"], "episodes": ctx["episodes"]},
                   notes="rsc-tune: best configuration retrained, scored on the test period")
    print(f"best trial {best['trial_id']} ({ctx['metric']} {best['metric_value']:.3f}): "
          f"retraining on {ctx['final_train'][0]}..{ctx['final_train'][1]} and scoring once "
          f"on the test period {ctx['test'][0]}..{ctx['test'][1]}", flush=True)
    from rsc_policy.evaluation.benchmarks import random_draws

    task = ray.remote(num_cpus=1)(_final_seed)
    try:
        # the random policies of the test period: the same for every seed, drawn once
        draws = ray.put(random_draws({**env, "start": ctx["test"][0], "end": ctx["test"][1]}))
        per_seed = ray.get([task.remote(env, agent, tuple(ctx["final_train"]),
                                        tuple(ctx["test"]), ctx["episodes"], s, draws)
                            for s in ctx["seeds"]])
    except BaseException as exc:
        store.close_run(run_id, "failed" if isinstance(exc, Exception) else "interrupted")
        raise
    store.close_run(run_id, "completed")
    from rsc_policy.tuning.report import test_period_verdict

    verdict = test_period_verdict(per_seed, metric="sharpe")
    verdict.update(best_trial_id=best["trial_id"], params=best["params"], run_id=run_id,
                   validation_metric=ctx["metric"], validation_value=best["metric_value"])
    return {"per_seed": per_seed, "verdict": verdict}


def _write_report(out: Path, settings: Mapping[str, Any], ctx: Mapping[str, Any],
                  rows: list[dict[str, Any]], final: Mapping[str, Any] | None, wall_s: float,
                  tuning_s: float | None = None) -> Path:
    from rsc_policy.tuning.report import write_report

    return write_report(out, settings, ctx, rows, final, wall_s=wall_s,
                        tuning_s=tuning_s if tuning_s is not None else wall_s)
