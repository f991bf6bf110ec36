"""Benchmark harness for bench/run.py: stack startup/teardown (stack.py), open-loop
websocket load (loadgen.py), /proc CPU and memory accounting (procstat.py), metrics
(metrics.py), plots (plot.py) and the scenarios (scenarios.py)."""
