"""``python -m benchmark`` is ``digitbench``."""

from benchmark.cli import main

raise SystemExit(main())
