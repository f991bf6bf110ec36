"""Build the triage model artefacts if they are missing (offline; idempotent).

Delegates to `manage.py triage build` when the triage app provides it.
"""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    command = ROOT / "triage" / "management" / "commands" / "triage.py"
    if not command.exists():
        print("triage CLI not present; skipping model build")
        return 0
    return subprocess.call([sys.executable, str(ROOT / "manage.py"), "triage", "build", "--if-missing"], cwd=ROOT)


if __name__ == "__main__":
    sys.exit(main())
