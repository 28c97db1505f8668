"""The ground layer: the Network data model, activations, projection kinds, builders and model files."""
