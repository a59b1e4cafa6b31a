"""The presets: TOML files shipped with digitbench, one a preset, in the keys of a ``--config`` file.
Copy one, edit it, and run it with ``digitbench run --config FILE``; each file's opening comment says
what it answers and what it costs."""

from __future__ import annotations

import tomllib
from importlib.resources import files
from typing import Any

#: The order `digitbench list presets` and the help show them in.
ORDER = ("quick", "standard", "tuners", "frontier", "scaling", "speedrun", "full")


def preset_names() -> tuple[str, ...]:
    found = {p.name.removesuffix(".toml") for p in files(__name__).iterdir() if p.name.endswith(".toml")}
    return tuple(n for n in ORDER if n in found) + tuple(sorted(found - set(ORDER)))


def preset(name: str) -> dict[str, Any]:
    """The settings of preset ``name`` as its file has them (keys as a TOML config file's)."""
    return tomllib.loads(files(__name__).joinpath(f"{name}.toml").read_text(encoding="utf-8"))


def description(name: str) -> str:
    """The preset file's opening comment, as one paragraph."""
    lines = files(__name__).joinpath(f"{name}.toml").read_text(encoding="utf-8").splitlines()
    comment = []
    for line in lines:
        if not line.startswith("#"):
            break
        comment.append(line.lstrip("# ").rstrip())
    return " ".join(comment)
