"""The import-linter contracts of pyproject.toml hold, so `make test` fails when an app imports one above it."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_layers_and_import_contracts_hold():
    lint_imports = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run(
        [str(lint_imports), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, f"broken import contracts:\n{result.stdout[-6000:]}{result.stderr[-2000:]}"
