"""`python -m mqar ...`: the same CLI as the `mqar` command (handy where the scripts folder is not on PATH)."""

from mqar.cli import app

app(prog_name="mqar")
