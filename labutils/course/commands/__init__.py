"""One module per command of ``python -m labutils``; each has ``add_commands(commands)``."""
