"""mlpkit.training"""
