"""`mqar sweep`: train a grid of models, every result kept in the store; run it again to resume."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from mqar.commands import sigterm_as_ctrl_c, stop_interrupted, this_command
from mqar.errors import UserError
from mqar.paths import DEFAULT_STORE, check_writable_folder
from mqar.runs import PRECISIONS, Recipe
from mqar.sweep import BACKENDS, SweepSpec, load_sweep_spec, preset_names, run_sweep, tasks_from_lists
from mqar.sweep.store import Store
from mqar.sweep.spec import parse_list

DEFAULT_PRESET = "quick"


def sweep(
    archs: Optional[str] = typer.Option(None, help="Comma-separated archs, e.g. based,rebased,attention."),
    d_models: Optional[str] = typer.Option(None, help="Comma-separated model widths, e.g. 64,128,256."),
    seq_lens: Optional[str] = typer.Option(None, help="Comma-separated sequence lengths (pair with --num-kv-pairs; vocab 8192 unless --vocab-size)."),
    num_kv_pairs: Optional[str] = typer.Option(
        None, help="Key-value pairs per seq_len, in the same order (or one value for all), e.g. 16,64."
    ),
    tasks: Optional[str] = typer.Option(None, help="A task suite instead of --seq-lens: name in tasks/ or a .toml path."),
    vocab_size: Optional[int] = typer.Option(None, help="Vocabulary size of every task."),
    lrs: Optional[str] = typer.Option(None, help="Comma-separated learning rates, e.g. 1e-3,3e-3."),
    seeds: Optional[str] = typer.Option(None, help="Comma-separated model seeds, e.g. 0,1,2."),
    epochs: Optional[int] = typer.Option(None, help="Training epochs (cosine schedule length)."),
    num_train_examples: Optional[int] = typer.Option(None, help="Training examples per task."),
    batch_size: Optional[int] = typer.Option(None, help="Examples per optimiser step."),
    precision: Optional[str] = typer.Option(None, help=f"Training precision: {', '.join(PRECISIONS)}."),
    preset: Optional[str] = typer.Option(
        None, help=f"A sweep preset from sweeps/: {', '.join(preset_names())}."
    ),
    config: Optional[Path] = typer.Option(None, "--config", help="A sweep .toml file (same format as the presets)."),
    name: Optional[str] = typer.Option(
        None, help="Sweep name in the store. Default: the preset's, or <preset>-<grid hash> when flags change the grid."
    ),
    store: Path = typer.Option(DEFAULT_STORE, help="Results store (SQLite file)."),
    devices: Optional[str] = typer.Option(
        None, "--devices", "--device", help="all (default: every GPU, else the CPU), cpu, or e.g. cuda:0,cuda:1."
    ),
    runs_per_device: Optional[int] = typer.Option(
        None, help="Runs trained at once on each device (packs small models; a CPU-only Ray cluster: on each node). "
                   "Default: 1 per GPU, one per CPU core."
    ),
    backend: str = typer.Option("local", help=f"Executor: {' or '.join(BACKENDS)}."),
    address: Optional[str] = typer.Option(
        None, help="With --backend ray: auto (the cluster `ray start` started on this machine) or HOST:PORT of a "
                   "running cluster. Default: the cluster RAY_ADDRESS names, else a private local Ray instance.",
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show the grid, its size and an estimated cost; train nothing."),
    retry_failed: bool = typer.Option(False, "--retry-failed", help="Run the sweep's failed runs again."),
    cache_dir: Optional[Path] = typer.Option(None, help="Dataset cache folder (default results/cache)."),
    live: Optional[bool] = typer.Option(
        None, "--live/--no-live", help="Rich live view (default on a terminal) or one line per finished run."
    ),
    compile: bool = typer.Option(
        False, "--compile",
        help="torch.compile each run's model (8-20 % more tokens/s on an H200; compiles for seconds first).",
    ),
) -> None:
    """Train every run of a grid (archs × d_models × tasks × lrs × seeds), resumably.

    Without --preset or --config the `quick` preset is the base and flags replace its fields; when the flags give other tasks (--seq-lens or --tasks), the training recipe is the papers' (64 epochs, 100k examples, batch 512) unless --epochs etc. say otherwise.

    Every result goes to the store as it finishes: run the same command again to resume (done runs are skipped, runs of a killed sweep are picked up again). Failed runs are recorded with their error; rerun them with --retry-failed.
    """
    spec = build_spec(
        preset=preset, config=config, name=name, archs=archs, d_models=d_models, seq_lens=seq_lens,
        num_kv_pairs=num_kv_pairs, tasks=tasks, vocab_size=vocab_size, lrs=lrs, seeds=seeds, epochs=epochs,
        num_train_examples=num_train_examples, batch_size=batch_size, precision=precision,
    )
    if backend not in BACKENDS:
        raise UserError(f"unknown --backend {backend!r}; use one of {', '.join(BACKENDS)}")
    if address is not None and backend != "ray":
        raise UserError("--address is for --backend ray")
    if backend == "ray" and devices is not None and devices not in ("auto", "all"):  # else said after the header
        raise UserError("--devices is for the local backend; Ray places tasks on the cluster's GPUs itself")
    if runs_per_device is not None and runs_per_device < 1:
        raise UserError(f"--runs-per-device must be at least 1, got {runs_per_device}")
    if dry_run:
        show_dry_run(spec, store, devices, runs_per_device, backend, address)
        return
    # Fail here, in one line, before anything is printed: unknown devices, an unwritable store or dataset cache.
    if backend == "local":
        from mqar.sweep.local import resolve_devices

        resolve_devices(devices)
    else:  # Ray missing or its cluster unreachable
        from mqar.sweep.ray_backend import connect

        connect(address)
    _check_cache_dir(cache_dir)  # before the store: a refused cache folder must not leave a new, empty store behind
    Store(store).close()
    console = Console(stderr=True, soft_wrap=True)
    console.print(f"sweep [bold]{spec.name}[/]: {spec.size} runs → {store}")
    from mqar.sweep.worker import compiled_train_fn

    with sigterm_as_ctrl_c() as interrupts:
        try:
            summary = run_sweep(
                spec, store, devices=devices, runs_per_device=runs_per_device, backend=backend,
                retry_failed=retry_failed, address=address, cache_dir=cache_dir, live=live,
                train_fn=compiled_train_fn() if compile else None,
            )
        except KeyboardInterrupt:  # before the workers started (registering the grid): nothing was trained yet
            stop_interrupted(console, "", interrupts.signum)
    if summary.reclaimed:
        console.print(f"picked up {summary.reclaimed} run(s) left unfinished by a stopped sweep")
    if summary.interrupted:
        stop_interrupted(console, summary.counts, interrupts.signum)
    console.print(
        f"sweep {spec.name}: {summary.done} done, {summary.failed} failed, {summary.pending + summary.running} left "
        f"of {summary.total} ({summary.finished_now} finished in {summary.seconds:.0f} s). "
        f"See `mqar results list --store {store}` and `mqar report`."
    )
    if summary.running:
        console.print(f"{summary.running} run(s) are still running in another process")
    if summary.failed:
        retry = this_command() if retry_failed else f"{this_command()} --retry-failed"
        console.print(f"{summary.failed} run(s) failed (errors in the store); rerun them with:\n  {retry}")


def _check_cache_dir(cache_dir: Optional[Path]) -> None:
    """An unwritable --cache-dir failed every run of the sweep, one traceback each, instead of once here."""
    from mqar.sweep.cache import DEFAULT_CACHE_DIR

    folder = cache_dir if cache_dir is not None else DEFAULT_CACHE_DIR
    check_writable_folder(folder, what=f"into the dataset cache {folder}", flag="--cache-dir")


def build_spec(*, preset: Optional[str], config: Optional[Path], name: Optional[str], archs: Optional[str],
               d_models: Optional[str], seq_lens: Optional[str], num_kv_pairs: Optional[str], tasks: Optional[str],
               vocab_size: Optional[int], lrs: Optional[str], seeds: Optional[str], epochs: Optional[int],
               num_train_examples: Optional[int], batch_size: Optional[int], precision: Optional[str]) -> SweepSpec:
    """The preset / file (default: quick) with the flags applied on top."""
    if preset is not None and config is not None:
        raise UserError("give --preset or --config, not both")
    base = load_sweep_spec(config if config is not None else (preset or DEFAULT_PRESET))
    if tasks is not None and seq_lens is not None:
        raise UserError("give --tasks (a suite) or --seq-lens/--num-kv-pairs, not both")
    if num_kv_pairs is not None and seq_lens is None:  # with --tasks it was silently ignored
        raise UserError("--num-kv-pairs pairs with --seq-lens; give both (e.g. --seq-lens 128,256 --num-kv-pairs 16,64)")
    task_specs = None
    if seq_lens is not None:
        if num_kv_pairs is None:
            raise UserError("--seq-lens needs --num-kv-pairs (one per seq_len, e.g. --seq-lens 128,256 --num-kv-pairs 16,64)")
        lengths = parse_list(seq_lens, int, "--seq-lens", "128,256")
        pairs = parse_list(num_kv_pairs, int, "--num-kv-pairs", "16,64")
        # Tasks from flags are described by the flags alone (TaskSpec defaults: vocab 8192, ...), not the preset's.
        task_specs = tasks_from_lists(lengths, pairs)
    elif tasks is not None:
        from mqar.sweep.spec import resolve_tasks

        task_specs = list(resolve_tasks(tasks, {}, where="--tasks"))
    recipe_overrides: dict[str, Any] = {
        key: value
        for key, value in (("epochs", epochs), ("num_train_examples", num_train_examples),
                           ("batch_size", batch_size), ("precision", precision))
        if value is not None
    }
    # The quick preset's recipe is tuned to its small task: a grid on other tasks without a preset or config file
    # starts from the papers' recipe instead (64 epochs, 100k examples, batch 512; see mqar.runs.Recipe).
    implicit_base = preset is None and config is None
    recipe = Recipe() if implicit_base and task_specs is not None else None
    return base.with_overrides(
        name=name,
        recipe=recipe,
        archs=parse_list(archs, str, "--archs", "based,rebased,attention") if archs is not None else None,
        d_models=parse_list(d_models, int, "--d-models", "64,128") if d_models is not None else None,
        tasks=task_specs,
        task_overrides={"vocab_size": vocab_size} if vocab_size is not None else None,
        lrs=parse_list(lrs, float, "--lrs", "1e-3,3e-3") if lrs is not None else None,
        seeds=parse_list(seeds, int, "--seeds", "0,1,2") if seeds is not None else None,
        recipe_overrides=recipe_overrides or None,
    )


def show_dry_run(spec: SweepSpec, store: Path, devices: Optional[str], runs_per_device: Optional[int],
                 backend: str, address: Optional[str] = None) -> None:
    from mqar.sweep.estimate import estimate
    from mqar.sweep.live import format_seconds

    console = Console()
    configs = spec.expand()
    table = Table(title=f"sweep {spec.name} (dry run: nothing is trained)", show_header=False, title_justify="left")
    table.add_row("archs", ", ".join(spec.archs))
    table.add_row("d_models", ", ".join(map(str, spec.d_models)))
    table.add_row("tasks", ", ".join(f"{t.name} (V={t.vocab_size})" for t in spec.tasks))
    table.add_row("lrs", ", ".join(f"{lr:g}" for lr in spec.lrs))
    table.add_row("seeds", ", ".join(map(str, spec.seeds)))
    recipe = spec.recipe
    table.add_row("recipe", f"{recipe.epochs} epochs, {recipe.num_train_examples:,} train / {recipe.num_valid_examples:,} "
                            f"valid / {recipe.num_test_examples:,} test examples, batch {recipe.batch_size}, {recipe.precision}")
    for seq_len, fields in spec.recipe_by_seq_len.items():
        table.add_row(f"seq_len {seq_len}", ", ".join(f"{key} {value}" for key, value in fields.items()))
    sizes = " × ".join(str(n) for n in (len(spec.archs), len(spec.d_models), len(spec.tasks), len(spec.lrs), len(spec.seeds)))
    table.add_row("runs", f"{sizes} = {spec.size}")
    measured: list[dict] = []
    todo = configs
    if store.is_file():  # read as `mqar results` reads it: a dry run writes nothing, not even an empty file's tables
        from mqar.results import load

        done_runs = load(store, status="done").drop_duplicates("run_id")  # a run shared by two sweeps counts once
        measured = done_runs[["run_id", "arch", "d_model", "seq_len", "device", "tokens_per_s"]].to_dict("records")
        done = set(done_runs["run_id"])
        todo = [config for config in configs if config.id not in done]
        table.add_row("already done", f"{spec.size - len(todo)} (in {store}); {len(todo)} to run")
    if backend == "local":
        from mqar.sweep.local import default_runs_per_device, resolve_devices

        device_names = resolve_devices(devices)
        per_device = runs_per_device or default_runs_per_device(device_names[0])
        slots = min(len(device_names) * per_device, max(1, len(todo)))
        where = f"{', '.join(device_names)} × {per_device} run(s) at once"
    else:
        device, slots, where = ray_slots(address, runs_per_device)
        device_names, slots = [device], min(slots, max(1, len(todo)))
    cost = estimate(todo, device_names[0], slots, measured)
    table.add_row(
        "estimated cost",
        f"~{format_seconds(cost.wall_seconds)} wall on {where}; {format_tokens(cost.tokens)} tokens at most "
        f"(early stopping shortens runs). An ESTIMATE from {cost.source}.",
    )
    console.print(table)


def ray_slots(address: Optional[str], runs_per_device: Optional[int]) -> tuple[str, int, str]:
    """The device class, slots and their description a Ray sweep would train on, known without starting or joining
    Ray (a dry run starts nothing). Without an address (nor RAY_ADDRESS), the sweep starts a private Ray instance
    on this machine (ray_backend.connect), so it has this machine's GPUs, else its CPUs. A cluster's devices are
    unknown until it is joined: it is assumed to have a GPU, as a cluster is mostly for GPUs, and the estimate says
    so."""
    from mqar.sweep.estimate import CPU_TOKENS_PER_S, CUDA_TOKENS_PER_S
    from mqar.sweep.local import usable_cpus
    from mqar.sweep.ray_backend import actor_slots, import_ray, resolve_address

    import_ray()  # a plan for a backend that cannot run here says so, as the run would (it starts and joins nothing)
    address = resolve_address(address)[0]  # where the run would go: RAY_ADDRESS's cluster, else a private instance
    if address == "local":
        import torch

        gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
        device, slots = actor_slots(gpus, [usable_cpus()], runs_per_device)
        if device == "cuda":
            per_gpu = runs_per_device or 1
            return device, slots, f"{slots} Ray GPU slot(s) on this machine ({gpus} GPU(s) × {per_gpu} run(s) at once)"
        return device, slots, f"{slots} Ray CPU slot(s) on this machine (it has no GPU)"
    slower = CUDA_TOKENS_PER_S / CPU_TOKENS_PER_S
    return "cuda", 1, (f"one GPU slot of the Ray cluster at address {address} (a dry run does not join it: divide by "
                       f"its GPU slots; on CPUs alone, ~{slower:.0f}× longer)")


def format_tokens(tokens: float) -> str:
    for scale, unit in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if tokens >= scale:
            return f"{tokens / scale:,.3g} {unit}"
    return f"{tokens:.0f}"
