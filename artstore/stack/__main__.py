"""``python -m artstore.stack up|down|env|status``."""

from artstore.stack.cli import stack_app

stack_app(prog_name="python -m artstore.stack")
