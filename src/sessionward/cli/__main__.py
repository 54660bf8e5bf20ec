"""`python -m sessionward.cli`, the same as the `sessionward` console script."""

from . import main

main()
