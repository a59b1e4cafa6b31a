"""``python -m digitbench`` is the ``digitbench`` command."""

from digitbench.benchmark.commands.main import main

raise SystemExit(main())
