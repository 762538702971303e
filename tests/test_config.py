"""Settings: the defaults a fresh install starts with."""
from webapp.config import limits_from_env, load_config


def test_the_default_upload_limit_takes_the_largest_import_the_row_limit_allows(tmp_path, monkeypatch):
    """2,000,000 rows of a dozen columns are ~220 MB: the 512 MB default takes them, as workers do too."""
    for name in ("MAX_UPLOAD_MB", "MAX_ROWS"):
        monkeypatch.delenv(name, raising=False)
    settings = load_config(tmp_path)
    assert (settings["MAX_UPLOAD_MB"], settings["MAX_ROWS"]) == (512, 2_000_000)
    limits = limits_from_env()
    assert (limits.max_bytes, limits.max_rows) == (512 * 1024 * 1024, 2_000_000)
