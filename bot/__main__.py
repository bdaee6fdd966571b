"""`python -m bot` is `orderhub`."""

from bot.cli.main import main

main()
