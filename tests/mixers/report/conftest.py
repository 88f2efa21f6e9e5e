"""The report tests build their outputs with the audit tests' helpers (tests/mixers/audit/audit_outputs.py)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "audit"))
