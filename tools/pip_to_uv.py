"""Print the uv options that give `uv pip install` the package sources pip is configured with.

uv reads neither pip.conf nor the PIP_* variables, so a machine whose pip takes torch from a
local index, or caps it with a constraints file, would otherwise get other wheels from uv.
Reads `pip config list` (every configuration file and PIP_* variable pip itself reads) and
passes on the index URL, extra index URLs, find-links, constraints and no-index; pip's other
settings do not choose wheels. With several URLs on several indexes, uv must pick the best
version across all of them, as pip does (`--index-strategy unsafe-best-match`).

Used by the Makefile's install step: python tools/pip_to_uv.py PYTHON  (the virtualenv's python,
whose pip is asked).
"""
from __future__ import annotations

import shlex
import subprocess
import sys

# pip's key -> uv's option (each value of a whitespace-separated list gets its own option)
OPTIONS = {"index-url": "--index-url", "extra-index-url": "--extra-index-url", "find-links": "--find-links",
           "constraint": "--constraint"}


def uv_options(config_lines: list[str]) -> list[str]:
    """`pip config list` lines (``scope.key='value'``) -> uv options, in pip's order."""
    options: list[str] = []
    seen: set[tuple[str, str]] = set()  # a file and a variable may say the same
    for line in config_lines:
        name, _, value = line.partition("=")
        key = name.rsplit(".", 1)[-1]
        values = shlex.split(value)
        if key == "no-index" and values and values[0].lower() in ("1", "true", "yes", "on"):
            options.append("--no-index")
        elif key in OPTIONS:
            for entry in " ".join(values).split():
                if (OPTIONS[key], entry) not in seen:
                    seen.add((OPTIONS[key], entry))
                    options += [OPTIONS[key], entry]
    if options.count("--extra-index-url") + options.count("--index-url") + options.count("--find-links") > 1:
        options += ["--index-strategy", "unsafe-best-match"]
    return options


def main() -> int:
    python = sys.argv[1] if len(sys.argv) > 1 else sys.executable
    listed = subprocess.run([python, "-m", "pip", "config", "list"], capture_output=True, text=True, check=True)
    print(shlex.join(uv_options(listed.stdout.splitlines())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
