"""What the `ephyto study` commands share: loading a scenario, the options every run
takes, the output directory's check, the progress line, and the simulation itself (used
by `simulate` and `run`).

Its own module so that each command module (study_report, study_sweep, study_emulate)
imports it, and node/cli/study.py imports them to register them: no circle.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from importlib import metadata, resources
from pathlib import Path
from typing import Any

from node import __version__
from node.errors import InputError
from node.study.scenario import MAX_SCENARIO_BYTES, ImportedTrade, Scenario, parse_scenario
from node.study.trade import Flows


def bundled_names() -> list[str]:
    """The bundled scenarios' names (node/study/scenarios/NAME.toml)."""
    folder = resources.files("node.study") / "scenarios"
    return sorted(e.name[: -len(".toml")] for e in folder.iterdir() if e.name.endswith(".toml"))


def load(name_or_path: str) -> Scenario:
    """A bundled scenario by name, or else the TOML file at that path."""
    if name_or_path in bundled_names():
        entry = resources.files("node.study") / "scenarios" / f"{name_or_path}.toml"
        return parse_scenario(entry.read_bytes())
    path = Path(name_or_path)
    if not path.is_file():
        raise InputError(
            f"{name_or_path}: no such scenario file, and not a bundled scenario "
            f"({', '.join(bundled_names())})"
        )
    with path.open("rb") as f:
        data = f.read(MAX_SCENARIO_BYTES + 1)
    try:
        return parse_scenario(data)
    except InputError as e:
        raise InputError(f"{path}: {e}") from None


def scale_option(text: str) -> float:
    # Checked here, not by argparse, so a bad value is one line like every other error.
    try:
        value = float(text)
    except ValueError:
        raise InputError(f"--scale: {text!r} is not a number") from None
    if not math.isfinite(value) or not 1e-6 <= value <= 10:
        raise InputError(f"--scale: {text!r}; a factor between 0.000001 and 10")
    return value


def seed_option(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise InputError(f"--seed: {text!r} is not a whole number") from None
    if not 0 <= value < 2**63:
        raise InputError(f"--seed: {text!r}; between 0 and 2**63 - 1")
    return value


def scenario_bytes(name_or_path: str) -> tuple[str, bytes]:
    """The scenario's file name and bytes, copied beside the outputs as they were read."""
    if name_or_path in bundled_names():
        entry = resources.files("node.study") / "scenarios" / f"{name_or_path}.toml"
        return f"{name_or_path}.toml", entry.read_bytes()
    path = Path(name_or_path)
    with path.open("rb") as f:
        return path.name, f.read(MAX_SCENARIO_BYTES + 1)


def progress(quiet: bool, verb: str = "simulated") -> Callable[[float], None] | None:
    """A progress line on stderr, at most once a second, with the time left estimated."""
    if quiet:
        return None
    started = time.monotonic()
    shown = [started]

    def report(done: float) -> None:
        done = min(max(done, 0.0), 1.0)
        now = time.monotonic()
        if now - shown[0] < 1.0 and done < 1.0:
            return
        shown[0] = now
        left = (now - started) * (1 - done) / done if done > 0 else 0.0
        sys.stderr.write(f"\r{verb} {done:6.1%} of the period, about {left:5.0f} s left ")
        sys.stderr.flush()

    return report


def check_output(output: Path, force: bool) -> None:
    """DIR for a run's files: new, or empty unless --force (InputError otherwise)."""
    if output.exists() and not output.is_dir():
        raise InputError(f"{output} exists and is not a directory (nothing was written)")
    if output.is_dir() and any(output.iterdir()) and not force:
        raise InputError(
            f"{output} is not empty: give a new directory, or --force to write into it "
            "(nothing was written)"
        )


def code_version() -> str:
    """The installed package's version (its metadata); the source's when not installed."""
    try:
        return metadata.version("ephyto-exchange")
    except metadata.PackageNotFoundError:
        return __version__


def imported_flows(scenario: Scenario, scenario_arg: str) -> Flows | None:
    """An imported scenario's flows, read from its CSV beside the scenario file; None for
    generated trade (the model draws it)."""
    if not isinstance(scenario.trade, ImportedTrade):
        return None
    from node.study import measures
    from node.study.trade_import import MAX_INPUT_BYTES

    if scenario_arg in bundled_names():
        raise InputError(f"{scenario_arg}: a bundled scenario cannot import trade")
    path = Path(measures.imported_trade_path(scenario.trade, Path(scenario_arg)))
    try:
        with path.open("rb") as f:
            data = f.read(MAX_INPUT_BYTES + 1)
    except OSError as e:
        raise InputError(f"trade.path: cannot read {path}: {e.strerror or e}") from None
    if len(data) > MAX_INPUT_BYTES:
        raise InputError(f"trade.path: {path} is larger than {MAX_INPUT_BYTES:,} bytes")
    return measures.imported_flows(scenario, data)


def simulation(
    scenario_arg: str,
    output: Path,
    scale: float,
    seed: int,
    force: bool,
    quiet: bool,
    service_file: Path | None = None,
) -> tuple[dict[str, Any], dict[str, bytes]]:
    """Check DIR, simulate, and return summary.json's values and every output file (name
    and bytes); writes nothing, so the caller writes only once all is worked out. Shared
    by `simulate` and `run` (node/cli/study_report.py)."""
    check_output(output, force)
    scenario = load(scenario_arg)
    copy_name, copy = scenario_bytes(scenario_arg)
    try:
        # SimPy is the study extra's: imported only here, so `ephyto --help` and the rest
        # of the node never pay for it or need it.
        from node.study import simulate as engine
        from node.study.outputs import run_outputs
    except ImportError:
        raise InputError(
            "simulate needs the study extra: pip install 'ephyto-exchange[study]' "
            "(or '.[study]' in a checkout)"
        ) from None
    flows = imported_flows(scenario, scenario_arg)
    service = engine.ServiceTimes()
    if service_file is not None:
        try:
            with service_file.open("rb") as f:
                data = f.read(engine.MAX_SERVICE_BYTES + 1)
        except OSError as e:
            raise InputError(f"--service: cannot read {service_file}: {e.strerror or e}") from None
        service = engine.service_times_from_json(data)
    options = engine.Options(seed=seed, scale=scale, flows=flows, service=service)
    run = engine.simulate(scenario, options, progress(quiet))
    if not quiet:
        sys.stderr.write("\n")
    summary, files = run_outputs(run, code_version())
    files[copy_name] = copy
    return summary, files
