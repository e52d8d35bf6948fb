"""One module per ``escalera`` command group; `worker.cli` only parses and dispatches."""
