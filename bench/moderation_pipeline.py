"""Benchmark: posts/s through the moderation pipeline and post -> "in the queue" latency.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench REDIS_URL=redis://127.0.0.1:6379/8 \
        .venv/bin/python bench/moderation_pipeline.py --posts 400 --concurrency 2

Creates a throwaway test database, starts a real Celery worker (bench/moderation_worker.py)
on the Redis broker, stores N posts on a pre-moderated board through the forum service
(post + outbox row in one transaction, dispatch after commit), and waits until every
post has its queue item. Reports:
- posts/s: N / (last item created - first post created);
- post -> queue p50/p99: QueueItem.created_at - Post.created_at (both database clock).
Without REDIS_URL it runs the pipeline eagerly in-process (no broker) and says so.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
if os.environ.get("REDIS_URL"):
    os.environ["EARLYHELP_TEST_EAGER"] = "0"


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, max(0, round(q * (len(values) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--posts", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--model", choices=["inline", "real"], default="inline")
    parser.add_argument("--timeout", type=float, default=300)
    args = parser.parse_args()

    import django

    django.setup()
    from django.conf import settings
    from django.db import connection

    real = bool(settings.REDIS_URL)
    if not real:
        from triage import engine

        engine.assess_full = lambda texts: [engine.assess_inline(t) for t in texts]
    test_db = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    worker = None
    try:
        from accounts.models import User
        from forums.models import Board
        from forums.services import thread_create
        from moderation.models import QueueItem

        if real:
            db = connection.settings_dict
            env = dict(os.environ, BENCH_MODEL=args.model, BENCH_CONCURRENCY=str(args.concurrency), EARLYHELP_TEST_EAGER="0",
                       DATABASE_URL=f"postgres://{db['USER'] or ''}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{test_db}")
            worker = subprocess.Popen([sys.executable, str(ROOT / "bench" / "moderation_worker.py")], cwd=ROOT, env=env,
                                      start_new_session=True)
            from config.celery import app

            deadline = time.monotonic() + 60
            while not app.control.ping(timeout=0.5):
                if time.monotonic() > deadline or worker.poll() is not None:
                    raise SystemExit("bench worker did not start")
        board = Board.objects.create(slug="bench", name="Bench", policy="pre")
        authors = [User.objects.create(handle=f"bench{i}", birth_year=2008, birth_month=1) for i in range(20)]
        texts = [
            "Exams are stressing me out, any tips for sleeping?",
            "My friends left me out again today and I feel rubbish",
            "you are such an idiot lol",
            "I want to kill myself tonight",
            "message me on 07700 900123 if you want to chat",
        ]
        started = time.monotonic()
        for i in range(args.posts):
            thread_create(user=authors[i % len(authors)], board=board, title=f"Thread {i}", body=f"{texts[i % len(texts)]} #{i}")
        submit_s = time.monotonic() - started
        deadline = time.monotonic() + args.timeout
        while QueueItem.objects.count() < args.posts:
            if time.monotonic() > deadline:
                raise SystemExit(f"timeout: {QueueItem.objects.count()}/{args.posts} queued")
            time.sleep(0.05)
        rows = list(QueueItem.objects.values_list("created_at", "post__created_at"))
        latencies = [(q - p).total_seconds() * 1000 for q, p in rows]
        span = (max(q for q, _ in rows) - min(p for _, p in rows)).total_seconds()
        mode = f"celery worker x{args.concurrency} on Redis, model={args.model}" if real else "eager in-process (no broker)"
        print(f"moderation pipeline ({mode}, {settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]})")
        print(f"  posts:            {args.posts} (submitted in {submit_s:.2f}s)")
        print(f"  throughput:       {args.posts / span:.1f} posts/s (first post stored -> last item queued)")
        print(f"  post -> queue:    p50 {statistics.median(latencies):.1f} ms, p99 {pct(latencies, 0.99):.1f} ms, max {max(latencies):.1f} ms")
    finally:
        if worker is not None and worker.poll() is None:
            import signal

            os.killpg(worker.pid, signal.SIGTERM)
            worker.wait(20)
        connection.creation.destroy_test_db(test_db, verbosity=0)


if __name__ == "__main__":
    main()
