"""The peer of profile_dataset in scripts/bench/profile.ts: the same per-column profile as a plain
pandas script, over the same rows as CSV (Debian bookworm packages no pyarrow, so pandas cannot
read the Parquet).

Per column: non-null count, nulls, blank strings, exact distinct count, min/max, mean/stddev,
p05/p25/p50/p75/p95, the 10 most frequent values, string lengths, zeros and negatives; then
duplicate rows and rows sharing a key. Timestamp columns are parsed (UTC), the others typed by
pandas' inference. Prints one JSON line: rows, per column count/nulls/distinct/min/max, duplicates
and the seconds each phase took.
"""

import argparse
import json
import sys
import time

import pandas as pd

QUANTILES = [0.05, 0.25, 0.5, 0.75, 0.95]


def plain(value):
    """A JSON-able scalar: numpy numbers as Python numbers, timestamps as ISO text."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "item"):
        return value.item()
    return value


def profile_column(values):
    present = values.dropna()
    out = {"count": int(present.size), "nulls": int(values.size - present.size), "distinct": int(present.nunique())}
    out["min"] = plain(present.min()) if present.size else None
    out["max"] = plain(present.max()) if present.size else None
    top = present.value_counts().head(10)
    out["top"] = [[str(v), int(n)] for v, n in top.items()]
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        out["mean"] = plain(present.mean())
        out["stddev"] = plain(present.std())
        out["quantiles"] = [plain(q) for q in present.quantile(QUANTILES)]
        out["zeros"] = int((present == 0).sum())
        out["negatives"] = int((present < 0).sum())
    elif pd.api.types.is_datetime64_any_dtype(values):
        out["quantiles"] = [plain(q) for q in present.quantile(QUANTILES)]
    elif values.dtype == object:
        text = present.astype(str)
        lengths = text.str.len()
        out["empty"] = int((text.str.strip() == "").sum())
        out["length"] = [plain(lengths.min()), plain(lengths.mean()), plain(lengths.max())]
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--csv", required=True)
    parser.add_argument("--key", required=True, help="comma-separated key columns")
    parser.add_argument("--timestamps", default="", help="comma-separated columns parsed as UTC timestamps")
    args = parser.parse_args()
    phases = {}
    clock = time.perf_counter()

    def phase(name):
        nonlocal clock
        now = time.perf_counter()
        phases[name] = round(now - clock, 3)
        clock = now

    frame = pd.read_csv(args.csv)
    for column in filter(None, args.timestamps.split(",")):
        frame[column] = pd.to_datetime(frame[column], utc=True, errors="coerce")
    phase("read")
    columns = {name: profile_column(frame[name]) for name in frame.columns}
    phase("columns")
    key = args.key.split(",")
    duplicates = {"rows": int(frame.duplicated().sum()), "rowsWithDuplicatedKey": int(frame.duplicated(subset=key, keep=False).sum())}
    phase("duplicates")
    print(json.dumps({"rows": len(frame), "columns": columns, "duplicates": duplicates, "phases": phases}))


if __name__ == "__main__":
    sys.exit(main())
