"""mlpkit.execution"""
