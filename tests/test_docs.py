"""The docs say what the code does: every command they show exists with the options they use, and the defaults
and example numbers they quote are the schema's and the example's."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", ROOT / "docs" / "user-guide.md"]


def _shown_commands() -> list[tuple[str, str]]:
    """Command lines inside ```bash (or bare ```) fences of the README and the user guide (a line ending in a
    backslash continues on the next)."""
    out = []
    for path in DOCS:
        fence = None  # the language of the open fence, or None outside one
        pending = ""
        for raw in path.read_text().splitlines():
            if raw.startswith("```"):
                fence = None if fence is not None else (raw[3:].strip() or "bash")
                pending = ""
                continue
            if raw.rstrip().endswith("\\"):
                pending += raw.rstrip()[:-1] + " "
                continue
            raw, pending = pending + raw, ""
            line = raw.split("  #")[0].strip()
            if fence == "bash" and re.match(r"mlpkit [a-z-]+( |$)", line) and "..." not in line:
                out.append((path.name, line))
    return out


@pytest.mark.parametrize("where, line", _shown_commands())
def test_every_command_the_docs_show_parses(where, line):
    """Each documented command line is accepted by the CLI's parser (no unknown command or option)."""
    import typer

    from mlpkit.cli import _register, app

    _register()
    command = typer.main.get_command(app)
    args = shlex.split(line)[1:]
    # typer ships its own copy of click: walk the groups by what they can do, not by class
    cmd, rest, ctx = command, list(args), command.context_class(command)
    while hasattr(cmd, "list_commands"):
        name, rest = rest[0], rest[1:]
        sub = cmd.get_command(ctx, name)
        assert sub is not None, f"{where}: `{line}`: no command {name!r}"
        cmd, ctx = sub, sub.context_class(sub, parent=ctx)
    known = {opt for p in cmd.params for opt in [*getattr(p, "opts", []), *getattr(p, "secondary_opts", [])]}
    for token in rest:
        if token.startswith("--"):
            assert token.split("=")[0] in known, f"{where}: `{line}`: {cmd.name} has no option {token}"
    cmd.make_context(cmd.name, list(rest), parent=ctx)  # the parser accepts the whole line (types, counts)


def test_quoted_defaults_are_the_schema_defaults():
    from mlpkit.config import ProjectConfig

    cfg = ProjectConfig()
    guide = (ROOT / "docs" / "user-guide.md").read_text()
    assert f"`sampling.n_configs` ({cfg.sampling.n_configs})" in guide
    assert f"`sampling.n_normal_modes` ({cfg.sampling.n_normal_modes})" in guide
    assert f"`model.committee.n_members` ({cfg.model.committee.n_members})" in guide


def test_stage_table_matches_the_water_example():
    data = yaml.safe_load((ROOT / "examples" / "water" / "mlpkit.yaml").read_text())
    s = data["sampling"]
    guide = (ROOT / "docs" / "user-guide.md").read_text()
    assert f"{s['n_configs']} snapshots {s['every']} fs apart plus {s['n_normal_modes']} normal-mode" in guide
    # the test set comes from the declared domain: test_frames per temperature
    from mlpkit.config import ProjectConfig

    domain = ProjectConfig.from_dict(data).domain
    temps = " and ".join(f"{t:g}" for t in domain.temperatures)
    assert f"A test set over the declared domain ({temps} K): {domain.test_frames} frames" in guide
    n_test = domain.test_frames * len(domain.temperatures)
    assert f"those {s['n_configs'] + s['n_normal_modes'] + n_test} configurations" in guide
