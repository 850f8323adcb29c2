"""The ``mlpkit`` command line. Each stage's commands live in their own module and register here.

Start-up order matters: :func:`main` sets the thread layout (:mod:`mlpkit.threads`) before any command module
imports numpy, torch or PySCF, whose thread pools read the environment once, at import. Keep this module's
own imports light for that reason.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import sys

import typer
from rich.console import Console

app = typer.Typer(
    name="mlpkit",
    help="From DFT calculations to validated machine-learning interatomic potentials, with active learning.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console(stderr=True)

# Modules that add commands to ``app`` when imported (a module not written yet is skipped).
_COMMAND_MODULES = (
    "mlpkit.cli.sample_cmds",
    "mlpkit.cli.data_cmds",
    "mlpkit.cli.label_cmds",
    "mlpkit.cli.model_cmds",
    "mlpkit.cli.validate_cmds",
    "mlpkit.cli.learn_cmds",
    "mlpkit.cli.run_cmds",
    "mlpkit.cli.compare_cmds",
    "mlpkit.cli.screen_cmds",
    "mlpkit.cli.engine_cmds",
)


def _register() -> None:
    for name in _COMMAND_MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise


#: options of the root command, readable by any subcommand
settings: dict[str, bool] = {"verbose": False}


def _print_version(value: bool) -> None:
    if value:
        from mlpkit import __version__

        typer.echo(f"mlpkit {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show full tracebacks on errors."),
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    settings["verbose"] = verbose


class _CommandInterrupted(Exception):
    """Ctrl-C inside a command, carried past typer (which turns KeyboardInterrupt into a silent exit 130)."""

    def __init__(self, original: KeyboardInterrupt):
        super().__init__(str(original))
        self.original = original


def _catch_interrupts(callback):
    @functools.wraps(callback)
    def wrapped(*args, **kwargs):
        try:
            return callback(*args, **kwargs)
        except KeyboardInterrupt as exc:
            raise _CommandInterrupted(exc) from None

    return wrapped


def _no_value_hint(param):
    # typer's options are not click.Option subclasses: test for the flag attribute instead
    if param is not None and getattr(param, "is_flag", False) and param.metavar is None:
        param.metavar = ""
    return param


def _prepare(command) -> None:
    """Every (sub)command: Ctrl-C reaches :func:`main`; flags shown without typer's ``<bool>`` value hint.

    The hint reads as if a flag took a value (``--retry-failed true`` then fails as an extra argument).
    """
    if command.callback is not None:
        command.callback = _catch_interrupts(command.callback)
    for param in command.params:
        _no_value_hint(param)
    get_help_option = command.get_help_option

    def help_option(ctx):
        return _no_value_hint(get_help_option(ctx))

    command.get_help_option = help_option
    for sub in getattr(command, "commands", {}).values():
        _prepare(sub)


class Interrupted(KeyboardInterrupt):
    """Ctrl-C with a note on what was saved (``str(exc)``, e.g. "12 labels saved"), printed by :func:`main`."""


def interrupted_message(exc: BaseException, what: str = "interrupted") -> str:
    """The one line printed on Ctrl-C (or SIGTERM): what was saved (when known) and how to go on."""
    saved = str(exc).strip() if isinstance(exc, Interrupted) else ""
    return f"{what}; {saved + '; ' if saved else ''}run the same command to continue"


#: set by the SIGTERM handler, so :func:`main` says "terminated" and exits 143 even where a command re-raised
#: the interrupt as its own :class:`Interrupted`
_terminated = {"flag": False}


def _sigterm_as_interrupt(signum, frame) -> None:
    # A batch system's time limit (Slurm sends SIGTERM, then SIGKILL after KillWait), `kill PID` or a container
    # stop: handled like Ctrl-C, so the same clean-up runs (Dask cluster and fitting processes closed, finished
    # work kept). Python's default for SIGTERM ends the process without it, leaving worker processes running.
    _terminated["flag"] = True
    raise KeyboardInterrupt("SIGTERM")


@contextlib.contextmanager
def _sigterm_handled():
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():  # signal.signal works in the main thread only
        yield
        return
    _terminated["flag"] = False
    previous = signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


def _quiet_shutdown() -> None:
    """After Ctrl-C: no log noise from Dask's clean-up (closing comms to workers that are going away)."""
    import logging

    for name in ("distributed", "dask", "tornado", "asyncio"):
        logging.getLogger(name).setLevel(logging.CRITICAL + 1)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point.

    Usage errors get click's message and exit code 2; user errors (:class:`MlpkitError`) one red line and exit
    code 2; a command's own ``typer.Exit(code)`` keeps its code; Ctrl-C one line ("interrupted; ...") and exit
    code 130, with no traceback; SIGTERM the same clean-up, "terminated; ..." and exit code 143. Returns normally
    on success, so tests can call it in-process.
    """
    from mlpkit.errors import MlpkitError
    from mlpkit.threads import configure_threads

    try:
        configure_threads()  # before _register(): the command modules import numpy
    except ValueError as exc:  # MLPKIT_THREADS=abc
        console.print(f"[bold red]error:[/] {exc}", highlight=False)
        sys.exit(2)
    try:
        _register()
        command = typer.main.get_command(app)
        _prepare(command)
        with _sigterm_handled():
            command.main(args=argv, prog_name="mlpkit", standalone_mode=True)
    except SystemExit as exc:
        if exc.code in (0, None):
            return
        raise
    except MlpkitError as exc:
        if settings["verbose"]:
            console.print_exception()
        console.print(f"[bold red]error:[/] {exc}", highlight=False)
        sys.exit(2)
    except (KeyboardInterrupt, _CommandInterrupted) as exc:
        _quiet_shutdown()
        original = exc.original if isinstance(exc, _CommandInterrupted) else exc
        terminated = _terminated["flag"]
        what = "terminated (SIGTERM)" if terminated else "interrupted"
        console.print(f"[red]{interrupted_message(original, what)}[/]", highlight=False, soft_wrap=True)
        sys.exit(143 if terminated else 130)
