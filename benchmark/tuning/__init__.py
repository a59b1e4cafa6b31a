"""Tuning: the one search-space language, studies, and the Optuna / keras-tuner drivers."""
