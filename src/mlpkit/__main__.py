"""``python -m mlpkit``: the same as the ``mlpkit`` command."""

from mlpkit.cli import main

main()
