"""mlpkit.sampling"""
