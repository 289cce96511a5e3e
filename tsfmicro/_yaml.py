"""YAML read from users (parameters files, ``--overrides``, ``-p KEY=VALUE``): a syntax error
or a file of the wrong shape becomes one line naming the source, line and column (a ValueError,
so the command line reports it with exit code 2) instead of a parser traceback."""
from __future__ import annotations

from typing import Any

import yaml


class YamlError(ValueError):
    """A user's YAML that cannot be read: ``<source>, line L, column C: <problem>``."""


def load(text: str, source: str) -> Any:
    """``yaml.safe_load(text)``; a syntax error names ``source`` (a file, or the option that gave
    the text), the 1-based line and column where the parser stopped, and its reason."""
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = error.problem or error.context or "not valid YAML"
        # the opening bracket or key the parser was inside says more than "got <stream end>"
        context = ""
        if error.context and error.context_mark is not None and error.problem:
            context = (f" ({error.context} opened at line {error.context_mark.line + 1}, "
                       f"column {error.context_mark.column + 1})")
        raise YamlError(f"{source}{where}: YAML syntax error: {problem}{context}") from None
    except yaml.YAMLError as error:  # unmarked: e.g. an undecodable character
        raise YamlError(f"{source}: YAML syntax error: {error}") from None


def load_mapping(text: str, source: str, what: str = "parameters") -> dict[str, Any]:
    """A YAML mapping (``key: value`` lines); empty text is an empty mapping. A list or a single
    value is refused naming ``source``, so it never reaches ``dict(...)`` as a puzzling error."""
    data = load(text, source)
    if data is None:
        return {}
    if not isinstance(data, dict):
        kind = "a list" if isinstance(data, list) else f"a single value ({data!r:.40})"
        raise YamlError(f"{source}: expected a mapping of {what} (key: value lines), got {kind}")
    return data
