"""The ``mlpkit`` command line. Each stage's commands live in their own module and register here."""

from __future__ import annotations

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
    "mlpkit.cli.data_cmds",
    "mlpkit.cli.model_cmds",
    "mlpkit.cli.validate_cmds",
    "mlpkit.cli.learn_cmds",
    "mlpkit.cli.run_cmds",
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


@app.callback()
def _root(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show full tracebacks on errors."),
) -> None:
    settings["verbose"] = verbose


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point.

    Usage errors get click's message and exit code 2; user errors (:class:`MlpkitError`) one red line and exit
    code 2; a command's own ``typer.Exit(code)`` keeps its code. Returns normally on success, so tests can call
    it in-process.
    """
    from mlpkit.errors import MlpkitError

    _register()
    try:
        app(args=argv, standalone_mode=True)
    except SystemExit as exc:
        if exc.code in (0, None):
            return
        raise
    except MlpkitError as exc:
        if settings["verbose"]:
            console.print_exception()
        console.print(f"[bold red]error:[/] {exc}", highlight=False)
        sys.exit(2)
    except KeyboardInterrupt:
        console.print("[red]interrupted[/] (finished work is saved; run the same command again to continue)")
        sys.exit(130)
