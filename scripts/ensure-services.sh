#!/usr/bin/env bash
# Start PostgreSQL and Redis on loopback if they are not already answering.
set -euo pipefail

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
redis_up() { redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; }

if ! pg_up; then
  echo "starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
  for _ in $(seq 1 30); do pg_up && break; sleep 1; done
fi
if ! redis_up; then
  echo "starting Redis"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
  for _ in $(seq 1 30); do redis_up && break; sleep 0.5; done
fi
pg_up || { echo "PostgreSQL is not reachable on 127.0.0.1:5432" >&2; exit 1; }
redis_up || { echo "Redis is not reachable on 127.0.0.1:6379" >&2; exit 1; }
# An aborted earlier run can leave sessions on the test database, and pytest-django then
# cannot recreate it. Only databases named test_* are touched.
psql -h 127.0.0.1 -U postgres -d postgres -qAt -c \
  "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname LIKE 'test\_%' AND pid <> pg_backend_pid()" \
  >/dev/null 2>&1 || true
echo "PostgreSQL and Redis are up"
