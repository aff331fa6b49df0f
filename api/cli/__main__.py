"""``python -m api.cli``: the same as the ``xyd`` console script."""

from api.cli import main

main()
