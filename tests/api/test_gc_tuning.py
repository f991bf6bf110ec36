"""The ASGI process's garbage-collector settings (config/gc_tuning.py): loading
config.asgi freezes what is loaded and raises the first-generation threshold."""

from __future__ import annotations

import gc
import subprocess
import sys

from django.conf import settings

from config.gc_tuning import tune_for_server


def test_loading_the_asgi_application_tunes_the_collector():
    # A fresh interpreter: this one's collector is shared by the whole test run.
    code = ("import gc, config.asgi; from django.conf import settings; "
            "print(gc.get_threshold()[0], settings.ASGI_GC_GEN0_THRESHOLD, gc.get_freeze_count() > 10000)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "config.settings.local",
                              "ASGI_GC_GEN0_THRESHOLD": "12345"}, cwd=settings.BASE_DIR).stdout.split()
    assert out == ["12345", "12345", "True"]


def test_zero_keeps_pythons_thresholds():
    before = gc.get_threshold()
    try:
        gc.set_threshold(700, 10, 10)
        tune_for_server(gen0_threshold=0)
        assert gc.get_threshold() == (700, 10, 10)
        tune_for_server(gen0_threshold=50_000)
        assert gc.get_threshold() == (50_000, 10, 10)
    finally:
        gc.set_threshold(*before)
