"""`make install` hands pip's package sources to uv (tools/pip_to_uv.py): uv reads neither pip.conf
nor PIP_* variables, so without them a machine whose pip takes torch from a local index, capped by
a constraints file, would get other wheels from uv."""
from __future__ import annotations

import importlib.util
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("pip_to_uv", ROOT / "tools" / "pip_to_uv.py")
pip_to_uv = importlib.util.module_from_spec(spec)
spec.loader.exec_module(pip_to_uv)


def test_every_source_pip_reads_is_passed_once_and_best_match_across_indexes():
    # `pip config list` as this project's build machine prints it: a variable and a file give the same
    # find-links; two extra indexes in one value; settings that choose no wheel (cert, timeout)
    lines = [":env:.cert='/etc/ssl/certs/ca-certificates.crt'",
             ":env:.default-timeout='180'",
             ":env:.find-links='/opt/wheels'",
             "global.cert='/etc/ssl/certs/ca-certificates.crt'",
             "global.constraint='/etc/xdg/pip/constraints.txt'",
             "global.extra-index-url='file:///opt/pypi/simple file:///opt/pypi-more/simple'",
             "global.find-links='/opt/wheels'"]
    assert pip_to_uv.uv_options(lines) == [
        "--find-links", "/opt/wheels", "--constraint", "/etc/xdg/pip/constraints.txt",
        "--extra-index-url", "file:///opt/pypi/simple", "--extra-index-url", "file:///opt/pypi-more/simple",
        "--index-strategy", "unsafe-best-match"]


def test_plain_pip_gives_plain_uv_and_no_index_is_kept():
    assert pip_to_uv.uv_options([]) == []  # PyPI alone: uv's default, one index, no strategy needed
    assert pip_to_uv.uv_options(["global.index-url='https://mirror.example/simple'"]) == [
        "--index-url", "https://mirror.example/simple"]
    assert pip_to_uv.uv_options([":env:.no-index='1'", ":env:.find-links='/w h/eels'"]) == [
        "--no-index", "--find-links", "/w", "--find-links", "h/eels",  # pip splits lists on whitespace too
        "--index-strategy", "unsafe-best-match"]  # two places to look: the best version of both, as pip


def test_the_command_asks_this_interpreters_pip_and_prints_shell_words():
    printed = subprocess.run([sys.executable, str(ROOT / "tools" / "pip_to_uv.py"), sys.executable],
                             capture_output=True, text=True, check=True).stdout
    listed = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True,
                            check=True).stdout.splitlines()
    assert shlex.split(printed) == pip_to_uv.uv_options(listed)
