"""mlpkit.uncertainty"""
