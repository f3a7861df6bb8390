"""The command line: argument parsing (``args``), `check` and its `--probe` (``check``, ``probe``),
the engine path `generate` shares (``generating``), reachability (``reach``) and report lines
(``report``). ``bot/__main__.py`` dispatches to them."""
