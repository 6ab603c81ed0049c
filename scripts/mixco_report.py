"""Reads `mixco eval --json` reports (the format of mixco_eval::report)."""
import json

SCHEMA = "mixco-eval-report-v1"


def load_reports(path):
    """The reports in `path` (one report, or the list `--transfer` writes).
    Reports from before the `schema` field have the v1 layout."""
    with open(path) as f:
        data = json.load(f)
    reports = data if isinstance(data, list) else [data]
    for r in reports:
        schema = r.get("schema", SCHEMA)
        if schema != SCHEMA:
            raise SystemExit(f"{path}: report schema {schema!r}; this script reads {SCHEMA}")
    return reports
