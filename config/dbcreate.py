"""``python -m config.dbcreate``: create the database named in DATABASE_URL if it is missing.

Connects to the server's ``postgres`` maintenance database with the same credentials;
safe to run any number of times.
"""

from __future__ import annotations

import os
import sys

import environ
import psycopg
from psycopg import sql


def main() -> int:
    url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/checkout")
    cfg = environ.Env.db_url_config(url)
    name = cfg["NAME"]
    params = {
        "host": cfg.get("HOST") or "127.0.0.1",
        "port": cfg.get("PORT") or 5432,
        "user": cfg.get("USER") or "postgres",
        "dbname": "postgres",
        "connect_timeout": 5,
        "autocommit": True,
    }
    if cfg.get("PASSWORD"):
        params["password"] = cfg["PASSWORD"]
    try:
        with psycopg.connect(**params) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
            if exists:
                print(f"database {name!r} exists")
            else:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
                print(f"database {name!r} created")
    except psycopg.Error as exc:
        print(
            f"cannot reach PostgreSQL at {params['host']}:{params['port']}: {exc}", file=sys.stderr
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
