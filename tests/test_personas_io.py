"""Loading a chunk's personas by key: any number of keys, each persona once, on both databases."""
from webapp.importer.merge import PersonaIndex
from webapp.importer.personas_io import load_into

MANY = 40_000  # more keys than a default SQLite build accepts as separate variables (32,766)


def test_a_chunk_finds_its_personas_among_more_keys_than_sqlite_has_variables(app, account_a, make_persona):
    make_persona(account_a, email="ann@example.com", phone="+15035550101")
    make_persona(account_a, email="bob@example.com", phone="+15035550102")
    emails = [f"nobody{n}@example.com" for n in range(MANY)] + ["ann@example.com"]
    phones = [f"+1503{n:07d}" for n in range(MANY)] + ["+15035550102", "+15035550101"]

    index = PersonaIndex()
    load_into(index, account_a.id, emails, phones, lock=True)

    assert sorted(p["email"] for p in index.by_id.values()) == ["ann@example.com", "bob@example.com"]
    assert index.by_phone["+15035550101"] is index.by_email["ann@example.com"]


def test_another_accounts_personas_are_never_loaded(app, account_a, account_b, make_persona):
    make_persona(account_b, email="ann@example.com")
    index = PersonaIndex()
    load_into(index, account_a.id, ["ann@example.com"], [])
    assert index.by_id == {}
