"""Evaluations: score a model's answers on a dataset (string metrics and model judges), compare models, gate a
fine-tune's promotion on the score."""
