"""Uploaded-step benchmark: how long the upload request of a workbook with a large shared strings part takes,
and how long the background job then takes to read and count it (SQLite, in-process runner).

Run from the project root: `python bench/uploaded_bench.py [--rows N] [--note-bytes N] [--read-now-mb MB]`.
The defaults write ~57 MB zipped with ~195 MB of shared strings (issue 17 item 8's file). `--read-now-mb 100000`
reads the workbook in the request, as before the background describe. Figures, not asserts.
"""
import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.workbooks import write_workbook  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=400_000)
    parser.add_argument("--note-bytes", type=int, default=400)
    parser.add_argument("--read-now-mb", type=float, default=None, help="READ_NOW_MB (default: the app's)")
    parser.add_argument("--file", type=Path, default=None, help="an .xlsx to use instead of a generated one")
    args = parser.parse_args()

    from webapp import create_app
    from webapp.accounts import create_account, create_user
    from webapp.models import Import, Membership
    from webapp.schema import init_schema

    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        path = args.file or write_workbook(folder / "big.xlsx", {"Customers": args.rows}, note_bytes=args.note_bytes)
        config = {"SECRET_KEY": "bench", "INSTANCE_PATH": str(folder), "DATABASE_URL": f"sqlite:///{folder / 'b.db'}",
                  "REDIS_URL": None, "UPLOAD_RATE_LIMIT": "1000/minute", "MAX_UPLOAD_MB": 1024}
        if args.read_now_mb is not None:
            config["READ_NOW_MB"] = args.read_now_mb
        app = create_app(config)
        with app.app_context():
            init_schema()
            account = create_account("Bench")
            create_user("owner@bench.example.com", "pw-long-enough", account, Membership.OWNER)
        client = app.test_client()
        from tests.conftest import csrf_token_of, log_in

        log_in(client, "owner@bench.example.com", "pw-long-enough")
        started = time.monotonic()
        with open(path, "rb") as stream:
            response = client.post("/imports/new", content_type="multipart/form-data",
                                   data={"file": (stream, path.name), "csrf_token": csrf_token_of(client)})
        request_seconds = time.monotonic() - started
        import_id = int(response.headers["Location"].split("/")[2])
        with app.app_context():
            row = Import.get_by_id(import_id)
            print(f"file {path.stat().st_size / 1e6:.0f} MB; upload request {request_seconds:.1f} s -> "
                  f"{response.status_code}, status {row.status}, rows {row.row_count}")
            while (row := Import.get_by_id(import_id)).status == "describing" or (
                    row.row_count is None and not row.file_error):
                time.sleep(0.2)
            print(f"described and counted {time.monotonic() - started:.1f} s after the upload began: "
                  f"{row.row_count} rows, headers {row.headers}, error {row.file_error}")


if __name__ == "__main__":
    main()
