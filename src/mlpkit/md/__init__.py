"""mlpkit.md"""
