"""The teaching demos run alone, as scripts, and write their figures."""
import subprocess
import sys
from pathlib import Path

import pytest

DEMOS = Path(__file__).resolve().parents[1] / "demos"


@pytest.mark.parametrize("script, args, figure", [
    pytest.param("spiking_agents.py", ["--window", "0.3"], "spiking_agents.png", marks=pytest.mark.slow),
    ("chip_precision.py", [], "chip_precision.png"),
])
def test_demo_runs_alone_and_writes_its_figure(tmp_path, script, args, figure):
    proc = subprocess.run([sys.executable, str(DEMOS / script), "--out", str(tmp_path), *args], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / figure).stat().st_size > 10_000
    assert "wrote" in proc.stdout
