"""What the schema step costs a server start on a database already at the newest revision.

    .venv/bin/python benchmarks/bench_schema_check.py [--rounds 200] [--database URL]

Every start runs :func:`provider.schema.upgrade` for the provider's tables and the bank's. On a
database at the newest revision that is the cheap check alone (one small query per component; no
lock, no Alembic environment). The baseline, measured in the same run on the same database, is
what 0.1.0 did at every start: ``create_all`` for both sets of tables (it inspects every table).
Printed: the median time of each, over interleaved rounds, and their ratio (check / create_all;
lower is better, target <= 1.0: migrations must not make starting slower).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from provider.db import Database
from provider.migrations import PROVIDER
from provider.models import Base
from provider.schema import upgrade
from resource_api.bank.migrations import BANK
from resource_api.bank.store import metadata as bank_metadata


def timed(step: Callable[[], object]) -> float:
    start = time.perf_counter()
    step()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--database", help="default: a fresh SQLite file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(args.database or f"sqlite:///{Path(tmp) / 'bench.db'}")
        upgrade(db.engine, PROVIDER)
        upgrade(db.engine, BANK)

        def check() -> None:
            upgrade(db.engine, PROVIDER)
            upgrade(db.engine, BANK)

        def create_all() -> None:
            Base.metadata.create_all(db.engine)
            bank_metadata.create_all(db.engine)

        checks, creates = [], []
        for i in range(args.rounds):  # interleaved, alternating order
            pair = [(check, checks), (create_all, creates)]
            for step, into in pair if i % 2 else reversed(pair):
                into.append(timed(step))
        c, b = statistics.median(checks), statistics.median(creates)
        print(f"{db.location}, {args.rounds} interleaved rounds")
        print(f"schema check at head (provider + bank)  {c * 1000:7.2f} ms")
        print(f"create_all, as 0.1.0 did (baseline)     {b * 1000:7.2f} ms")
        print(f"ratio check / create_all                {c / b:7.2f}")
        db.dispose()


if __name__ == "__main__":
    main()
