"""Two tabs of one browser on one import (issue 13.1): a tab whose upload was removed never imports anything.

Tab A takes a file to Review; tab B removes it, uploads another file and takes that one to Review; tab A
then ticks "Opt in all personas in this file to SMS", accepts the terms and clicks Import Personas. Nothing
is imported (not the other file, not with tab A's opt-in) and tab A says why.
"""
import re

import pytest

pytest.importorskip("playwright.sync_api")
from playwright.sync_api import expect  # noqa: E402

from tests.browser.helpers import Wizard, people_csv  # noqa: E402
from webapp.db import db  # noqa: E402
from webapp.models import Import, Persona  # noqa: E402
from webapp.views.wizard import REMOVED  # noqa: E402


def test_import_personas_in_a_tab_whose_upload_was_removed_imports_nothing(page, shot, live, tmp_path):
    tab_a = Wizard(page, shot, expect)
    tab_a.open()
    tab_a.upload(people_csv(tmp_path / "march.csv", 3), "a-uploaded")
    tab_a.to_mapping("a-mapping")
    tab_a.submit_mapping("a-review")
    removed_id = tab_a.import_id()

    tab_b = Wizard(page.context.new_page(), shot, expect)
    tab_b.shots = tab_a.shots
    tab_b.page.goto(f"/imports/{removed_id}/uploaded")
    tab_b.page.get_by_role("button", name="Remove").click()
    expect(tab_b.step()).to_have_attribute("data-step", "upload")
    tab_b.upload(people_csv(tmp_path / "april.csv", 5), "b-uploaded-another")
    tab_b.to_mapping("b-mapping")
    tab_b.submit_mapping("b-review")
    other_id = tab_b.import_id()
    assert other_id != removed_id  # the removed upload's number never goes to the next file

    tab_a.shots = tab_b.shots
    page.bring_to_front()
    page.get_by_label("Opt in all personas in this file to SMS").check()
    expect(page.locator("#review-counts")).to_have_text(REMOVED)  # the counts say so at once
    page.get_by_label("I accept").check()
    page.get_by_role("button", name="Import Personas").click()

    expect(tab_a.step()).to_have_attribute("data-step", "upload")
    expect(tab_a.step().get_by_role("alert")).to_have_text(REMOVED)
    expect(page.locator("#messages")).to_be_empty()  # one message, where the step starts
    expect(page).to_have_url(re.compile(r"/imports/new$"))
    # The other file is still waiting in tab B's Review, and step 1 offers to continue it.
    expect(tab_a.step().get_by_role("link", name="Continue april.csv")).to_be_visible()
    tab_a.snap("a-told-removed")
    with db.connection_context():
        assert Persona.select().count() == 0
        other = Import.get_by_id(other_id)
        assert (other.status, other.terms_accepted_at, other.options) == ("validated", None, {})
        assert Import.get_or_none(Import.id == removed_id) is None

    # Tab B imports its own file, with its own choices: nobody opted in to SMS.
    tab_b.page.bring_to_front()
    tab_b.import_personas(name="b-importing")
    tab_b.wait_finished("b-finished")
    with db.connection_context():
        people = list(Persona.select())
        assert len(people) == 5 and not any(p.sms_opt_in for p in people)
