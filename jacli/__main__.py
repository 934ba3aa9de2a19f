"""``python -m jacli``."""

from jacli.cli import main

main()
