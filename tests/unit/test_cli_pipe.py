"""A `nightshift` command whose output reader went away stops quietly, without a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_a_closed_output_pipe_gives_no_traceback(tmp_path):
    env = {**os.environ, "NIGHTSHIFT_HOME": str(tmp_path)}
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "nightshift"), "db", "status"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    process.stdout.close()  # the reader is gone before the command writes its first line
    _, errors = process.communicate(timeout=120)
    assert "Traceback" not in errors, errors
    assert process.returncode == 141, errors
