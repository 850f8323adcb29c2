"""mlpkit.descriptors"""
