"""Active learning (``mlpkit learn``) as steps: initial set, test set, then per iteration train, explore,
select and label, until the stop rule says so; a random-sampling baseline and a report at the end.

The public entry point is :func:`mlpkit.workflows.active_learning.loop.run_active_learning`.
"""
