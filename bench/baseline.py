"""The same benchmark on an earlier commit, in the same session ("against the previous code").

    from bench.baseline import run_on_commit
    rows = run_on_commit("b80539c", "bench/batch.py", ["--size", "512"], "--out")

The commit is checked out as a detached git worktree in a temporary folder and the script is
run there in a subprocess whose ``PYTHONPATH`` puts that tree first, so it imports that
commit's ``agrostress`` and ``api``; the script writes its JSON figures to a file given by
``json_flag``. The worktree is removed afterwards.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def run_on_commit(rev: str, script: str, args: list[str], json_flag: str) -> dict[str, Any]:
    """Run ``script`` (a path relative to the repository) of commit ``rev`` with ``args`` and
    return the JSON it wrote through ``json_flag FILE``."""
    tmp = Path(tempfile.mkdtemp(prefix="agrostress-baseline-"))
    tree, out = tmp / "tree", tmp / "figures.json"
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), rev],
                   check=True, capture_output=True)
    try:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            [str(tree), *filter(None, [os.environ.get("PYTHONPATH")])])}
        check = subprocess.run([sys.executable, "-c", "import agrostress; print(agrostress.__file__)"],
                               cwd=tree, env=env, check=True, capture_output=True, text=True)
        if not check.stdout.strip().startswith(str(tree)):
            raise RuntimeError(f"the baseline imports {check.stdout.strip()}, not {tree}")
        print(f"baseline: commit {rev} ({script} {' '.join(args)})", flush=True)
        subprocess.run([sys.executable, script, *args, json_flag, str(out)], cwd=tree, env=env,
                       check=True)
        return json.loads(out.read_text())
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)],
                       check=False, capture_output=True)
