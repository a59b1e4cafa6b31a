"""Griffe extension for the API pages: digitbench's docstrings are written in reStructuredText
habits, which Markdown does not have. Roles (``:class:`InputError```) become code
(`` `InputError` ``), and a literal block introduced by ``::`` becomes a fenced code block."""

from __future__ import annotations

import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:py:)?(?:class|func|meth|mod|attr|data|exc|obj):`~?([^`]+)`")
LITERAL = re.compile(r"::\n\n((?:[ \t]+\S.*\n?|\n)+)")


def _fence(match: re.Match) -> str:
    block = match.group(1).rstrip("\n").split("\n")
    indent = min(len(line) - len(line.lstrip()) for line in block if line.strip())
    code = "\n".join(line[indent:] for line in block)
    return f":\n\n```python\n{code}\n```\n\n"


class SphinxRolesToCode(griffe.Extension):
    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            text = ROLE.sub(r"`\1`", obj.docstring.value)
            obj.docstring.value = LITERAL.sub(_fence, text + "\n").rstrip("\n")
