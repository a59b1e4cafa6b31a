"""``python -m benchmark`` is ``digitbench``."""

from benchmark.commands.main import main

raise SystemExit(main())
