"""Applications: the command line, its subcommands, the main job's report and its figures."""
