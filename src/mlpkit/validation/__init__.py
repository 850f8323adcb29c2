"""mlpkit.validation"""
