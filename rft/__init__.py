"""The rejection-sampling loop: prompts, model clients, verifiers, results store."""
