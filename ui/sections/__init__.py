"""One module per dashboard section; each takes the orchestrator client and draws itself."""
