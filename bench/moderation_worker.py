"""A Celery worker for bench/moderation_pipeline.py.

With BENCH_MODEL=inline the model layer is replaced by the inline layer, so the
benchmark measures the moderation pipeline (broker, database, routing, events), not
the ML model; BENCH_MODEL=real keeps triage.engine.assess_full as it is.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
    import django

    django.setup()
    if os.environ.get("BENCH_MODEL", "inline") == "inline":
        from triage import engine

        engine.assess_full = lambda texts: [engine.assess_inline(t) for t in texts]
    from config.celery import app

    concurrency = os.environ.get("BENCH_CONCURRENCY", "2")
    app.worker_main(["worker", "-Q", "moderation", "-c", concurrency, "--pool", "prefork", "-l", "WARNING",
                     "--without-gossip", "--without-mingle", "-n", f"bench{os.getpid()}@%h", *sys.argv[1:]])


if __name__ == "__main__":
    main()
