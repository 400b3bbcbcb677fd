"""One module per `workshop` sub-command; each exposes run(args) -> exit code."""
