"""``python -m ganforge`` is the ``ganforge`` command."""

from .cli import main

raise SystemExit(main())
