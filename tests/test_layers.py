"""The layers import one way (docs/architecture.md): import-linter's contracts hold."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EDGES = "    strava_massage.web | strava_massage.worker | webhooks\n"
SERVICES = "    strava_massage.services\n"


def _lint(config: Path) -> subprocess.CompletedProcess[str]:
    """Run import-linter (from the test extra) on a contracts file."""
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert lint is not None, "import-linter is part of the test extra"
    return subprocess.run(
        [lint, str(config), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )


def test_the_import_contracts_hold() -> None:
    result = _lint(ROOT / ".importlinter")
    assert result.returncode == 0, result.stdout[-4000:]
    assert "0 broken" in result.stdout


def test_the_layers_contract_can_fail(tmp_path: Path) -> None:
    """With services put above the pages and the worker, their imports of it are reported."""
    config = (ROOT / ".importlinter").read_text()
    assert EDGES + SERVICES in config
    swapped = tmp_path / "importlinter.ini"
    swapped.write_text(config.replace(EDGES + SERVICES, SERVICES + EDGES))
    result = _lint(swapped)
    assert result.returncode == 1
    assert "strava_massage.worker is not allowed to import strava_massage.services" in (
        result.stdout
    )
