"""``python -m tlskit``."""

from tlskit.cli import main

if __name__ == "__main__":
    main()
