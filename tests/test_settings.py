"""Settings read once into one object (issue 16.2): what the environment says, and who follows it."""
from tests.engine_helpers import tune
from tests.jobs_helpers import validated_import, write_csv
from webapp import config
from webapp.importer import validation
from webapp.models import Import


def test_the_settings_come_from_the_environment_with_the_embedded_defaults(tmp_path):
    settings = config.Settings.from_env(tmp_path, environ={"IMPORT_CHUNK_ROWS": "500", "MAX_ROWS": ""})
    assert settings.database_url == f"sqlite:///{tmp_path / 'personas.db'}" and settings.redis_url is None
    assert (settings.chunk_rows, settings.max_rows, settings.stale_seconds) == (500, 2_000_000, 60.0)
    assert settings.limits == config.Limits(max_bytes=512 * 1024 * 1024, max_rows=2_000_000)


def test_the_app_installs_the_settings_it_was_built_with(app):
    assert config.current().database_url == app.config["DATABASE_URL"]
    assert config.current().limits == config.upload_limits(app.config)


def test_import_chunk_rows_sizes_the_dry_run_s_batches_as_well_as_the_apply_s_units(
        app, account_a, owner_a, tmp_path, monkeypatch):
    tune(monkeypatch, IMPORT_CHUNK_ROWS=100)
    parsed = []
    parse_batch = validation.parse_batch
    monkeypatch.setattr(validation, "parse_batch", lambda batch, *args: parsed.append(len(batch.lines))
                        or parse_batch(batch, *args))
    upload = validated_import(account_a, owner_a, write_csv(tmp_path / "c.csv", 450))
    assert parsed == [200, 200, 50]  # two units a batch
    assert Import.get_by_id(upload.id).rows_total == 450
