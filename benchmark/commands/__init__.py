"""The command-line interface: run, report, list, submit, predict (heavy imports inside each command)."""
