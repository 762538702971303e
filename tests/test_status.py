"""One status type (issue 16.2): every status an import can be in, its groups and its moves, in states.py."""
from webapp.importer import states
from webapp.importer.states import MOVES, Status, transitions
from webapp.models import Import


def test_every_move_starts_and_ends_in_a_status_of_the_type():
    for rule in MOVES.values():
        assert all(isinstance(start, Status) for start in rule.start)
        assert rule.to is None or isinstance(rule.to, Status)


def test_the_life_of_an_import_as_the_moves_allow_it():
    allowed = transitions()
    assert allowed[Status.DRAFT] == {Status.DRAFT, Status.VALIDATING, Status.DESCRIBING}  # another sheet, read later
    assert allowed[Status.DESCRIBING] == {Status.DESCRIBING, Status.DRAFT}  # the background job read it
    assert Status.QUEUED in allowed[Status.VALIDATED] and Status.RUNNING in allowed[Status.QUEUED]
    assert allowed[Status.RUNNING] == {Status.RUNNING, Status.COMPLETED, Status.FAILED}
    assert allowed[Status.REVERTED] == {Status.REVERTED}  # the end: only its file can still be deleted
    assert Status.DRAFT not in allowed[Status.COMPLETED]  # a finished import never goes back to the wizard


def test_the_groups_split_the_statuses_as_the_pages_show_them():
    assert set(states.BEFORE_SUBMIT) | set(states.APPLYING) | set(states.FINISHED) | {Status.REVERTING} == set(Status)
    assert set(states.EDITABLE) <= set(Status) - set(states.APPLYING) - {Status.REVERTING}
    assert set(states.JOB_OF) == set(states.WORKING)
    assert set(states.BEATING) <= set(states.WORKING)


def test_a_status_is_stored_as_its_string_and_found_by_either(app, account_a, owner_a):
    upload = Import.create(account=account_a, user=owner_a, file_name="x.csv")
    assert Import.select().where(Import.id == upload.id).dicts().get()["status"] == "draft"
    assert Import.get((Import.id == upload.id) & (Import.status == Status.DRAFT)).status == Status.DRAFT
    assert states.move(upload.id, "validate")
    assert Import.get_by_id(upload.id).status == "validating" == Status.VALIDATING
