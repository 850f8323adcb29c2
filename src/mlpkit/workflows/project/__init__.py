"""``mlpkit run``: the whole project from one configuration file, as steps (one module per stage) driven by
:func:`mlpkit.workflows.project.runner.run_project`."""
