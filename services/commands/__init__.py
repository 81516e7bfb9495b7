"""Operator commands, one module each, dispatched by `python -m services`. Nothing imports this wing."""
