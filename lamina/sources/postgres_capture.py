"""What Lamina installs in a PostgreSQL database to capture a table's changes, and removes.

No extension and no server setting is needed (logical decoding would need wal_level=logical):
a plpgsql row trigger appends every change to a change log with a sequence number and wakes
readers with pg_notify. Everything lives in the schema `lamina_cdc`:

- `lamina_cdc.change_seq`  a sequence; the SequenceNumber of every change.
- `lamina_cdc.changes`     the change log: (source, seq, op, new_image, old_image, created_at).
- `lamina_cdc.consumers`   one row per mapping: the sequence number it has processed up to.
- `lamina_cdc.capture()`   the trigger function.
- on each captured table, the trigger `lamina_cdc_capture` (AFTER INSERT OR UPDATE OR DELETE,
  FOR EACH ROW).

Order: the trigger takes a transaction-scoped advisory lock per table before it draws its
sequence number, so the writers of one table draw numbers in commit order and a reader never
sees a number after a smaller one still to come. The cost: concurrent writing transactions of
the same table wait for each other from their first change to their commit.

Removing a mapping drops its consumer row; the last mapping of a table also drops the table's
trigger and its log. `DROP SCHEMA lamina_cdc CASCADE` removes everything, triggers included.
"""

from __future__ import annotations

from psycopg import AsyncConnection, sql

SCHEMA = "lamina_cdc"
TRIGGER = "lamina_cdc_capture"
CHANNEL = "lamina_cdc"
INSTALL_LOCK = "lamina_cdc:install"
RETENTION = "24 hours"  # processed changes are kept this long (as DynamoDB Streams keeps them)

SETUP = f"""
CREATE SCHEMA IF NOT EXISTS {SCHEMA};
CREATE SEQUENCE IF NOT EXISTS {SCHEMA}.change_seq;
CREATE TABLE IF NOT EXISTS {SCHEMA}.changes (
    source text NOT NULL,
    seq bigint NOT NULL,
    op text NOT NULL,
    new_image jsonb,
    old_image jsonb,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (source, seq)
);
CREATE TABLE IF NOT EXISTS {SCHEMA}.consumers (
    mapping_uuid text PRIMARY KEY,
    source text NOT NULL,
    position bigint NOT NULL
);
CREATE OR REPLACE FUNCTION {SCHEMA}.capture() RETURNS trigger
LANGUAGE plpgsql AS $body$
DECLARE
    src text := TG_ARGV[0];
    new_j jsonb;
    old_j jsonb;
BEGIN
    IF TG_OP <> 'DELETE' THEN new_j := to_jsonb(NEW); END IF;
    IF TG_OP <> 'INSERT' THEN old_j := to_jsonb(OLD); END IF;
    IF TG_OP = 'UPDATE' AND new_j = old_j THEN
        RETURN NULL;  -- nothing changed: no record, as DynamoDB Streams
    END IF;
    PERFORM pg_advisory_xact_lock(hashtextextended('{SCHEMA}:' || src, 0));
    INSERT INTO {SCHEMA}.changes (source, seq, op, new_image, old_image)
    VALUES (src, nextval('{SCHEMA}.change_seq'),
            CASE TG_OP WHEN 'INSERT' THEN 'INSERT' WHEN 'UPDATE' THEN 'MODIFY' ELSE 'REMOVE' END,
            new_j, old_j);
    PERFORM pg_notify('{CHANNEL}', src);
    RETURN NULL;
END
$body$;
"""


def source_name(schema: str, table: str) -> str:
    return f"{schema}.{table}"


def table_ident(schema: str, table: str) -> sql.Composed:
    return sql.SQL(".").join([sql.Identifier(schema), sql.Identifier(table)])


async def install(
    conn: AsyncConnection[object],
    schema: str,
    table: str,
    mapping_uuid: str,
    starting_position: str,
) -> int:
    """Set up the change log and the table's trigger (idempotent) and the mapping's consumer row
    (its starting position applies only the first time). Returns the mapping's position."""
    source = source_name(schema, table)
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [INSTALL_LOCK])
        present = await conn.execute(
            "SELECT to_regclass(%s) IS NOT NULL AND to_regprocedure(%s) IS NOT NULL",
            [f"{SCHEMA}.consumers", f"{SCHEMA}.capture()"],
        )
        found = await present.fetchone()
        if not (found and found[0]):  # type: ignore[index]
            # Only when missing: CREATE SCHEMA needs the CREATE privilege even when it exists.
            await conn.execute(SETUP)
        exists = await conn.execute(
            "SELECT 1 FROM pg_trigger WHERE tgrelid = %s::regclass AND tgname = %s",
            [source_regclass(schema, table), TRIGGER],
        )
        if await exists.fetchone() is None:
            await conn.execute(
                sql.SQL(
                    "CREATE TRIGGER {} AFTER INSERT OR UPDATE OR DELETE ON {} "
                    "FOR EACH ROW EXECUTE FUNCTION {}.capture({})"
                ).format(
                    sql.Identifier(TRIGGER),
                    table_ident(schema, table),
                    sql.Identifier(SCHEMA),
                    sql.Literal(source),
                )
            )
        start = 0
        if starting_position == "LATEST":
            cur = await conn.execute(
                f"SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM {SCHEMA}.change_seq"
            )
            row = await cur.fetchone()
            start = int(row[0]) if row else 0  # type: ignore[index]
        await conn.execute(
            f"INSERT INTO {SCHEMA}.consumers (mapping_uuid, source, position) "
            "VALUES (%s, %s, %s) ON CONFLICT (mapping_uuid) DO NOTHING",
            [mapping_uuid, source, start],
        )
        cur = await conn.execute(
            f"SELECT position FROM {SCHEMA}.consumers WHERE mapping_uuid = %s", [mapping_uuid]
        )
        row = await cur.fetchone()
    return int(row[0]) if row else start  # type: ignore[index]


def source_regclass(schema: str, table: str) -> str:
    """The table's name as regclass input (quoted, so that case and odd characters survive)."""
    return table_ident(schema, table).as_string(None)


async def uninstall(conn: AsyncConnection[object], schema: str, table: str, uuid: str) -> None:
    """Forget the mapping; the last mapping of the table takes the trigger and the log along."""
    source = source_name(schema, table)
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [INSTALL_LOCK])
        present = await conn.execute("SELECT to_regclass(%s)", [f"{SCHEMA}.consumers"])
        found = await present.fetchone()
        if found is None or found[0] is None:  # type: ignore[index]
            return
        await conn.execute(f"DELETE FROM {SCHEMA}.consumers WHERE mapping_uuid = %s", [uuid])
        cur = await conn.execute(f"SELECT 1 FROM {SCHEMA}.consumers WHERE source = %s", [source])
        if await cur.fetchone() is not None:
            return
        await conn.execute(f"DELETE FROM {SCHEMA}.changes WHERE source = %s", [source])
        table_cur = await conn.execute("SELECT to_regclass(%s)", [source_regclass(schema, table)])
        table_row = await table_cur.fetchone()
        if table_row is not None and table_row[0] is not None:  # type: ignore[index]
            await conn.execute(
                sql.SQL("DROP TRIGGER IF EXISTS {} ON {}").format(
                    sql.Identifier(TRIGGER), table_ident(schema, table)
                )
            )


async def prune(conn: AsyncConnection[object], schema: str, table: str) -> None:
    """Drop the changes every mapping of the table has processed, once they are old enough."""
    source = source_name(schema, table)
    await conn.execute(
        f"DELETE FROM {SCHEMA}.changes WHERE source = %s AND created_at < now() - interval "
        f"'{RETENTION}' AND seq <= (SELECT min(position) FROM {SCHEMA}.consumers "
        "WHERE source = %s)",
        [source, source],
    )
