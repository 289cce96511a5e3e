"""``python -m tsfmicro.chapters notebooks``: the book's notebooks in book order, one per line
(the Makefile's NOTEBOOKS); ``toc``: the same as the entries of _toc.yml's results part."""
from __future__ import annotations

import sys

from tsfmicro import chapters


def main(argv: list[str]) -> int:
    if argv == ["notebooks"]:
        print("\n".join(chapters.notebooks()))
        return 0
    if argv == ["toc"]:
        print("\n".join(f"      - file: notebooks/{name}" for name in chapters.notebooks()))
        return 0
    print("usage: python -m tsfmicro.chapters {notebooks,toc}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
