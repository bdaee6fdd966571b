"""`python -m bot` is `orderhub`."""

from bot.cli import main

main()
