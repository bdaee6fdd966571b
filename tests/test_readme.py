"""README stays true: the signed curl works as pasted (its signature verifies) and the command table lists every
command the CLI has."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import typer.main

from bot.cli.main import app
from webhooks.signing import verify

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


@pytest.mark.skipif(shutil.which("openssl") is None, reason="the README's curl signs with openssl")
def test_signed_curl_as_pasted_sends_a_valid_signature(tmp_path: Path) -> None:
    block = re.search(r"<!-- signed-curl -->\n```bash\n(.*?)```", README, re.S).group(1)
    fake_curl = tmp_path / "curl"  # records what curl would send instead of sending it
    fake_curl.write_text('#!/bin/sh\nfor a in "$@"; do printf "%s\\n" "$a"; done > "$CURL_ARGS"\n')
    fake_curl.chmod(0o755)
    args_file = tmp_path / "args"
    subprocess.run(["bash", "-c", block], check=True, timeout=30,
                   env={"PATH": f"{tmp_path}:/usr/bin:/bin", "CURL_ARGS": str(args_file)})
    args = args_file.read_text(encoding="utf-8").splitlines()
    header = next(a for a in args if a.startswith("X-OrderHub-Signature: ")).split(": ", 1)[1]
    body = args[args.index("--data-binary") + 1].encode()
    verify(b"s3cret", body, header, time.time(), 300)  # raises if the pasted command signs wrongly
    assert "http://127.0.0.1:8000/webhooks/orders/generic" in args


def _commands(group: typer.Typer, prefix: str = "") -> set[str]:
    click_group = typer.main.get_command(group)
    names: set[str] = set()

    def walk(cmd, path: str) -> None:
        subs = getattr(cmd, "commands", None)
        if subs:
            for name, sub in subs.items():
                walk(sub, f"{path} {name}".strip())
        else:
            names.add(path)

    walk(click_group, prefix)
    return names


def test_readme_command_table_lists_every_command() -> None:
    table = README.split("## Commands", 1)[1].split("\n## ", 1)[0]
    missing = [c for c in sorted(_commands(app)) if f"`orderhub {c}" not in table and f"/ `{c.split()[-1]}" not in table]
    assert missing == []


def _listed_parts_of_bot() -> dict[str, set[str]]:
    """The README's picture of bot/: {"": top-level files, "cli/": its modules, ...}. An entry line is indented two
    spaces; deeper-indented lines continue the entry above. A line starting with a package lists that package's
    modules and subpackages; a line starting with a file lists top-level files."""
    block = re.search(r"<!-- bot-tree -->\n```\n(.*?)```", README, re.S).group(1)
    token = re.compile(r"(?<![\w`./])(\w+(?:\.py|/))(?![\w`])")
    parts: dict[str, set[str]] = {}
    current = ""
    for line in block.splitlines()[1:]:
        names = token.findall(line)
        if re.match(r"  \S", line):
            current = names[0] if names[0].endswith("/") else ""
            names = names[1:] if current else names
        parts.setdefault(current, set()).update(names)
    return parts


def _children(folder: Path) -> set[str]:
    return {p.name + ("/" if p.is_dir() else "") for p in folder.iterdir()
            if p.name not in {"__init__.py", "__pycache__"} and (p.is_dir() or p.suffix == ".py")}


def test_readme_picture_of_bot_matches_the_tree() -> None:
    bot = Path(__file__).resolve().parent.parent / "bot"
    listed = _listed_parts_of_bot()
    actual = {"": {n for n in _children(bot) if not n.endswith("/")}}
    actual |= {n: _children(bot / n) for n in _children(bot) if n.endswith("/")}
    assert listed == actual
