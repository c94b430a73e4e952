"""The bronze_to_silver transform as a plain pandas script: the peer scripts/bench/silver.ts measures
the job against (run with Debian's /usr/bin/python3 and python3-pandas).

    bench_silver_pandas.py --dataset-json D.json --out DIR --database-url URL FILE...

Same rules as processors/data_pipeline/silver/transform.ts, driven by the same dataset declaration (the bench
writes it as JSON): every value read as text; trimmed, lower-cased, empty to null; the first broken
rule of a row (required, type, one of, e-mail, column by column) rejects it to DIR/_rejects.ndjson;
per key the greatest version wins (then the greater file name); the agency columns are joined from
the `agency` table through psycopg2; the rows go to DIR/part-00000.parquet, zstd, in key order.
Prints one JSON line: the counts and the seconds each phase took.

Debian bookworm packages neither pyarrow nor fastparquet, so Parquet is written by the small
writer at the end (PLAIN values, one zstd page per column and row group, python3-zstandard); the
bench reads every file it writes back through DuckDB.
"""

import argparse
import json
import os
import struct
import sys
import time

import numpy as np
import pandas as pd
import psycopg2
import zstandard

# As in processors/data_pipeline/silver/transform.ts.
EMAIL = r"[^@\s]+@[^@\s]+\.[^@\s]+"
INTEGER = r"[+-]?[0-9]+"
# read_json turns a whole file into Python dicts before it builds a frame; chunks bound that.
JSON_CHUNK_ROWS = 200_000
# About pyarrow's default row group size (1Mi rows).
ROW_GROUP_ROWS = 1_000_000


def read_bronze(dataset, files):
    """Every file as text columns plus `filename`, aligned by column name like DuckDB's union_by_name."""
    frames = []
    for path in files:
        if dataset["format"] == "csv":
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False)
        else:
            chunks = pd.read_json(path, lines=True, dtype=False, convert_dates=False, chunksize=JSON_CHUNK_ROWS)
            frame = pd.concat([chunk.apply(as_text) for chunk in chunks], ignore_index=True)
        frame["filename"] = path
        frames.append(frame)
    raw = pd.concat(frames, ignore_index=True)
    for name in dataset["columns"]:
        if name not in raw:
            raw[name] = None
    return raw


def as_text(values):
    """A JSON column as the text DuckDB reads into VARCHAR: 2 is "2" even where pandas made it 2.0."""
    if values.dtype == object and pd.api.types.infer_dtype(values, skipna=True) in ("string", "empty"):
        return values
    if values.dtype.kind in "iu":
        return values.astype(str).astype(object)
    if values.dtype.kind == "b":
        return values.map({True: "true", False: "false"}).astype(object)
    if values.dtype.kind == "f":
        return values.map(lambda v: str(int(v)) if v.is_integer() else repr(v), na_action="ignore").astype(object)
    return values.map(lambda v: v if isinstance(v, str) else json.dumps(v), na_action="ignore").astype(object)


def normalise(text, spec):
    if not (spec["type"] == "string" and spec.get("trim") is False):
        text = text.str.strip()
    if spec.get("lowercase") or spec.get("email"):
        text = text.str.lower()
    return text.mask(text == "")


def cast(text, spec):
    """The typed column: null where the text is null or not of the type."""
    kind = spec["type"]
    if kind == "string":
        return text
    if kind == "integer":
        whole = text.str.fullmatch(INTEGER).fillna(False).astype(bool)
        numbers = pd.to_numeric(text.where(whole), errors="coerce")
        return numbers.where(numbers.abs() < 2**63).astype("Int64")
    if kind == "number":
        return pd.to_numeric(text, errors="coerce")
    if kind == "boolean":
        return text.str.lower().map({"true": True, "t": True, "1": True, "yes": True, "y": True, "false": False, "f": False, "0": False, "no": False, "n": False}).astype("boolean")
    if kind == "timestamp":
        return pd.to_datetime(text, utc=True, errors="coerce")
    if kind == "date":
        return pd.to_datetime(text, format="%Y-%m-%d", errors="coerce")
    raise ValueError(f"unknown type {kind}")


def rules(name, spec, normalised, typed):
    """(rule, broken) per rule of the column, in the order the job checks them."""
    if spec.get("required"):
        yield "required", normalised.isna()
    if spec["type"] != "string":
        yield f"type: {spec['type']}", normalised.notna() & typed.isna()
    if spec.get("oneOf"):
        yield "one of: " + ", ".join(spec["oneOf"]), normalised.notna() & ~normalised.isin(spec["oneOf"])
    if spec.get("email"):
        yield "email", normalised.notna() & ~normalised.str.fullmatch(EMAIL).fillna(False).astype(bool)


def write_rejects(path, raw, columns, rejected, rule, column):
    rows = raw.loc[rejected, columns].astype(object).where(raw.loc[rejected, columns].notna(), None)
    with open(path, "w", encoding="utf-8") as out:
        for file, r, c, row in zip(raw.loc[rejected, "filename"], rule[rejected], column[rejected], rows.to_dict("records")):
            out.write(json.dumps({"file": file, "rule": r, "column": c, "value": row[c], "row": row}) + "\n")


def enrich(silver, enrichment, database_url):
    """silver with the enrichment's columns, left-joined from the agency table (unknown keys give nulls)."""
    ids = [int(i) for i in silver[enrichment["key"]].dropna().unique()]
    connection = psycopg2.connect(database_url)
    try:
        with connection.cursor() as cursor:
            cursor.execute("select id, name, is_active from agency where id = any(%s::bigint[])", (ids,))
            found = pd.DataFrame(cursor.fetchall(), columns=["id", "name", "is_active"])
    finally:
        connection.close()
    found = found.astype({"id": "Int64", "name": object, "is_active": "boolean"})
    lookup = found.rename(columns={"id": enrichment["key"], **{field: column for column, field in enrichment["columns"].items()}})
    return silver.merge(lookup[[enrichment["key"], *enrichment["columns"]]], how="left", on=enrichment["key"])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset-json", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("files", nargs="+")
    args = parser.parse_args()
    with open(args.dataset_json, encoding="utf-8") as f:
        dataset = json.load(f)
    columns = list(dataset["columns"])
    phases = {}
    clock = time.perf_counter()

    def phase(name):
        nonlocal clock
        now = time.perf_counter()
        phases[name] = round(now - clock, 3)
        clock = now

    raw = read_bronze(dataset, args.files)
    phase("read")

    typed = pd.DataFrame({"filename": raw["filename"]})
    rule = pd.Series(None, index=raw.index, dtype=object)
    column = pd.Series(None, index=raw.index, dtype=object)
    for name, spec in dataset["columns"].items():
        normalised = normalise(raw[name], spec)
        typed[name] = cast(normalised, spec)
        for broken_rule, broken in rules(name, spec, normalised, typed[name]):
            first = broken & rule.isna()
            rule[first] = broken_rule
            column[first] = name
    rejected = rule.notna()
    phase("validate")

    os.makedirs(args.out, exist_ok=True)
    if rejected.any():
        write_rejects(os.path.join(args.out, "_rejects.ndjson"), raw, columns, rejected, rule, column)
    valid = typed[~rejected]
    del raw
    phase("rejects")

    key = list(dataset["primaryKey"])
    latest = valid.sort_values([dataset["versionColumn"], "filename"], ascending=False, na_position="last").drop_duplicates(subset=key, keep="first")
    silver = latest[columns].sort_values(key, ignore_index=True)
    phase("deduplicate")

    for enrichment in dataset.get("enrich", []):
        silver = enrich(silver, enrichment, args.database_url)
    phase("enrich")

    write_parquet(os.path.join(args.out, "part-00000.parquet"), silver)
    phase("write")
    print(json.dumps({"rowsIn": len(typed), "rejected": int(rejected.sum()), "duplicates": len(valid) - len(silver), "rowsOut": len(silver), "phases": phases}))


# --- A minimal Parquet writer: Thrift compact protocol for the metadata, PLAIN pages, zstd. ---

I32, I64, BINARY, LIST, STRUCT, BOOL_TRUE, BOOL_FALSE = 5, 6, 8, 9, 12, 1, 2
PLAIN, RLE, ZSTD, DATA_PAGE, OPTIONAL = 0, 3, 6, 0, 1


def varint(out, n):
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)


def thrift_struct(out, fields):
    """fields: (id, kind, value) with kind i32, i64, bin, bool, struct or list<kind>; None is left out."""
    last = 0
    for field_id, kind, value in fields:
        if value is None:
            continue
        wire = {"i32": I32, "i64": I64, "bin": BINARY, "struct": STRUCT}.get(kind, LIST)
        if kind == "bool":
            wire = BOOL_TRUE if value else BOOL_FALSE
        if 0 < field_id - last <= 15:
            out.append((field_id - last) << 4 | wire)
        else:
            out.append(wire)
            varint(out, field_id << 1)
        last = field_id
        thrift_value(out, kind, value)
    out.append(0)


def thrift_value(out, kind, value):
    if kind in ("i32", "i64"):
        varint(out, (value << 1) ^ (value >> 63))
    elif kind == "bin":
        data = value.encode() if isinstance(value, str) else value
        varint(out, len(data))
        out += data
    elif kind == "struct":
        thrift_struct(out, value)
    elif kind.startswith("list<"):
        element = kind[5:-1]
        wire = {"i32": I32, "bin": BINARY, "struct": STRUCT}[element]
        if len(value) < 15:
            out.append(len(value) << 4 | wire)
        else:
            out.append(0xF0 | wire)
            varint(out, len(value))
        for item in value:
            thrift_value(out, element, item)


def parquet_column(values):
    """(physical type, converted type, logical type fields, encoder of the non-null values) of a pandas column."""
    dtype = values.dtype
    if isinstance(dtype, pd.DatetimeTZDtype):
        timestamp = [(8, "struct", [(1, "bool", True), (2, "struct", [(2, "struct", [])])])]
        return 2, 10, timestamp, lambda v: (v.to_numpy(dtype="datetime64[ns]").view("i8") // 1000).astype("<i8").tobytes()
    if dtype.kind == "M":
        return 1, 6, [(6, "struct", [])], lambda v: (v.to_numpy(dtype="datetime64[D]").view("i8")).astype("<i4").tobytes()
    if isinstance(dtype, pd.Int64Dtype) or dtype.kind in "iu":
        return 2, None, None, lambda v: v.to_numpy(dtype="<i8").tobytes()
    if dtype.kind == "f":
        return 5, None, None, lambda v: v.to_numpy(dtype="<f8").tobytes()
    if isinstance(dtype, pd.BooleanDtype) or dtype.kind == "b":
        return 0, None, None, lambda v: np.packbits(v.to_numpy(dtype=bool), bitorder="little").tobytes()
    return 6, 0, [(1, "struct", [])], lambda v: b"".join(struct.pack("<I", len(b)) + b for b in (s.encode() for s in v))


def write_parquet(path, frame):
    compressor = zstandard.ZstdCompressor(level=3)
    kinds = {name: parquet_column(frame[name]) for name in frame.columns}
    row_groups = []
    with open(path, "wb") as out:
        out.write(b"PAR1")
        for start in range(0, max(len(frame), 1), ROW_GROUP_ROWS):
            group = frame.iloc[start : start + ROW_GROUP_ROWS]
            chunks = []
            for name in frame.columns:
                physical, _, _, encode = kinds[name]
                present = group[name].notna().to_numpy()
                levels = bytearray()
                varint(levels, (len(present) + 7) // 8 << 1 | 1)
                levels += np.packbits(present, bitorder="little").tobytes()
                body = struct.pack("<I", len(levels)) + bytes(levels) + encode(group[name][present])
                compressed = compressor.compress(body)
                header = bytearray()
                thrift_struct(header, [(1, "i32", DATA_PAGE), (2, "i32", len(body)), (3, "i32", len(compressed)), (5, "struct", [(1, "i32", len(present)), (2, "i32", PLAIN), (3, "i32", RLE), (4, "i32", RLE)])])
                offset = out.tell()
                out.write(header)
                out.write(compressed)
                meta = [(1, "i32", physical), (2, "list<i32>", [PLAIN, RLE]), (3, "list<bin>", [name]), (4, "i32", ZSTD), (5, "i64", len(present)),
                        (6, "i64", len(header) + len(body)), (7, "i64", len(header) + len(compressed)), (9, "i64", offset)]
                chunks.append((len(header) + len(body), [(2, "i64", offset), (3, "struct", meta)]))
            row_groups.append([(1, "list<struct>", [c for _, c in chunks]), (2, "i64", sum(size for size, _ in chunks)), (3, "i64", len(group))])
        schema = [[(4, "bin", "schema"), (5, "i32", len(frame.columns))]]
        for name in frame.columns:
            physical, converted, logical, _ = kinds[name]
            schema.append([(1, "i32", physical), (3, "i32", OPTIONAL), (4, "bin", name), (6, "i32", converted), (10, "struct", logical)])
        footer = bytearray()
        thrift_struct(footer, [(1, "i32", 1), (2, "list<struct>", schema), (3, "i64", len(frame)), (4, "list<struct>", row_groups), (6, "bin", "bench_silver_pandas")])
        out.write(footer)
        out.write(struct.pack("<I", len(footer)))
        out.write(b"PAR1")


if __name__ == "__main__":
    sys.exit(main())
