"""Parts of the command line that need no I/O (the commands themselves run in bot/__main__.py)."""
