"""One module per ``neuro-balance`` subcommand, each exposing ``register(subparsers)``."""
