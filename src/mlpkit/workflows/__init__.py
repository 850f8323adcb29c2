"""Workflows built from steps on one resume engine (:mod:`mlpkit.workflows.engine`): ``project`` (``mlpkit
run``: sample → label → train → validate → learn → production → speed → report) and ``active_learning``
(``mlpkit learn``)."""
