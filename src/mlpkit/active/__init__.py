"""mlpkit.active"""
