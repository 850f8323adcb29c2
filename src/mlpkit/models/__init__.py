"""mlpkit.models"""
