"""placeholder."""

COMMANDS: list = []
