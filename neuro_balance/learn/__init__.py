"""Learning: backprop training with balancing schedules, datasets, and the theory's experiments."""
