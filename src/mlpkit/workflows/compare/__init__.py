"""``mlpkit compare``: every family (and any saved or pretrained model) on the same data, in one table."""

from mlpkit.workflows.compare.run import Entry, compare, md_box, md_cost

__all__ = ["Entry", "compare", "md_box", "md_cost"]
