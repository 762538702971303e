"""The data model: accounts and users, personas, imports with their file and staged rows, audit.

On PostgreSQL the tables an import fills by the million (personas, attributes, audience members, audit
entries) carry no foreign-key constraints: each checked row cost more than writing it. The import core is
their only writer and deletes their dependent rows itself (see schema.BULK_FOREIGN_KEYS).
"""
import datetime
import json

from peewee import (
    SQL,
    AutoField,
    BigIntegerField,
    BlobField,
    BooleanField,
    CharField,
    DateField,
    DateTimeField,
    ForeignKeyField,
    IntegerField,
    Model,
    NodeList,
    TextField,
)

from webapp.db import db, is_sqlite
from webapp.importer.states import Status


def utcnow() -> datetime.datetime:
    """Naive UTC now: both databases store it as given."""
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


class JSONField(TextField):
    """JSON stored as text, portable across SQLite and PostgreSQL."""

    def db_value(self, value):
        return None if value is None else json.dumps(value, separators=(",", ":"), default=str)

    def python_value(self, value):
        return None if value is None else json.loads(value)


class NeverReusedId(AutoField):
    """An id never handed out twice, even after its row is deleted: a stale page or link can never reach another row.

    AUTOINCREMENT on SQLite (a plain INTEGER PRIMARY KEY takes the largest id + 1); PostgreSQL's sequences
    never go back anyway.
    """

    def ddl(self, ctx):
        node = super().ddl(ctx)
        return NodeList((node, SQL("AUTOINCREMENT"))) if is_sqlite() else node


class BaseModel(Model):
    class Meta:
        database = db
        legacy_table_names = False


class Account(BaseModel):
    name = CharField(unique=True)
    phone_region = CharField(default="US", max_length=2)
    day_first = BooleanField(default=False)
    created_at = DateTimeField(default=utcnow)


class User(BaseModel):
    """A person who signs in; Flask-Login's user, whose get_id is Peewee's: the id, a number."""

    # What Flask-Login asks of a signed-in user, written here: its UserMixin would load Flask into the core.
    is_authenticated, is_active, is_anonymous = True, True, False
    id = NeverReusedId()
    email = CharField(unique=True)
    name = CharField(default="")
    password_hash = CharField()
    created_at = DateTimeField(default=utcnow)


class UserSession(BaseModel):
    """A signed-in session, open until sign-out, a password change or its lifetime ends (webapp/sessions.py).

    The session cookie carries a random token; this row (keyed by the token's SHA-256) is what makes that
    cookie worth anything, so deleting it ends every copy of the cookie at once.
    """

    key = CharField(primary_key=True, max_length=64)
    user = ForeignKeyField(User, backref="sessions", on_delete="CASCADE")
    created_at = DateTimeField(default=utcnow)


class Membership(BaseModel):
    OWNER, STAFF = "owner", "staff"

    user = ForeignKeyField(User, backref="memberships", on_delete="CASCADE")
    account = ForeignKeyField(Account, backref="memberships", on_delete="CASCADE")
    role = CharField(default=STAFF)

    class Meta:
        indexes = ((("user", "account"), True),)


class Import(BaseModel):
    """One import, from its first upload: the wizard's state, then the job's state."""

    class Meta:
        table_name = "imports"

    # Its statuses and moves: importer/states.py. version goes up with every move (compare-and-set).
    id = NeverReusedId()
    account = ForeignKeyField(Account, backref="imports", on_delete="CASCADE")
    user = ForeignKeyField(User, on_delete="CASCADE")
    file_name = TextField(default="")
    sha256 = CharField(default="")
    size = BigIntegerField(default=0)
    kind = CharField(default="")
    sheet = TextField(null=True)
    sheet_names = JSONField(default=list)
    sheet_rows = JSONField(default=dict)  # data rows per sheet name, once counted (the sheet picker shows them)
    header_line = IntegerField(null=True)
    headers = JSONField(default=list)
    samples = JSONField(default=dict)
    mapping = JSONField(default=dict)
    # Columns whose pre-filled target came from a remembered mapping (importer/remembered.py): header ->
    # {"target", "automatic", "import_id", "file_name", "on"}, for the Map step's note and reset.
    prefilled = JSONField(default=dict)
    options = JSONField(default=dict)
    file_error = TextField(null=True)
    row_count = IntegerField(null=True)
    terms_version = CharField(null=True)
    terms_accepted_at = DateTimeField(null=True)
    terms_accepted_by = ForeignKeyField(User, null=True, on_delete="SET NULL", backref="+")
    terms_ip = CharField(null=True)
    status = CharField(default=Status.DRAFT, index=True)  # webapp.importer.states: its moves, its groups
    version = IntegerField(default=1)
    rows_total = IntegerField(default=0)
    rows_done = IntegerField(default=0)
    counts = JSONField(default=dict)
    review = JSONField(default=dict)
    staged = BooleanField(default=False)
    checkpoint = IntegerField(default=0)  # rows applied so far (AppliedUnit says which)
    unit_rows = IntegerField(null=True)  # rows per unit of the apply, fixed when it starts
    lease = CharField(null=True)
    attempt = IntegerField(default=0)
    run_checkpoint = IntegerField(default=0)  # the checkpoint when the current run took the lease
    stalls = IntegerField(default=0)  # runs that died without moving the checkpoint: the halt counts these
    heartbeat_at = DateTimeField(null=True)
    error_message = TextField(null=True)
    audience_id = IntegerField(null=True)
    file_deleted = BooleanField(default=False)
    created_at = DateTimeField(default=utcnow)
    touched_at = DateTimeField(null=True)  # its last move (states.move): drafts untouched for days expire
    queued_at = DateTimeField(null=True)
    started_at = DateTimeField(null=True)
    finished_at = DateTimeField(null=True)
    reverted_at = DateTimeField(null=True)  # while reverting: when its last chunk committed
    reverted_by = IntegerField(null=True)
    revert_result = JSONField(null=True)  # {"reverted": N, "not_reverted": [{"persona", "reason"}]}


class UploadChunk(BaseModel):
    """The uploaded file's bytes, in pieces, so any worker on any machine can stream it."""

    upload = ForeignKeyField(Import, backref="chunks", on_delete="CASCADE", index=False)  # the index below starts with it
    seq = IntegerField()
    data = BlobField()

    class Meta:
        indexes = ((("upload", "seq"), True),)


class StagedChunk(BaseModel):
    """A batch of the validation's parsed rows with what it found of them, as compressed columns.

    The apply reads these instead of the file, and reuses what the validation found wherever the personas
    it found are unchanged since.
    """

    upload = ForeignKeyField(Import, on_delete="CASCADE", index=False)  # the index below starts with it
    kind = CharField(default="alone")  # alone: rows that interact with no other; together: the others
    first_seq = IntegerField()  # the rows' sequence numbers (1..n in file order), first and last
    last_seq = IntegerField()
    data = BlobField()

    class Meta:
        indexes = ((("upload", "kind", "first_seq"), True),)


class AppliedUnit(BaseModel):
    """A unit of an import's apply that committed, with what its rows did: where a resumed apply goes on."""

    upload = ForeignKeyField(Import, on_delete="CASCADE", index=False)  # the index below starts with it
    unit = CharField()  # "<kind>:<range>": kind alone (independent rows) or together (interacting ones)
    rows = IntegerField()
    counts = JSONField(default=dict)

    class Meta:
        indexes = ((("upload", "unit"), True),)


class ProblemRow(BaseModel):
    """The original cells of a row with a problem: what the problem report gives back to fix."""

    upload = ForeignKeyField(Import, on_delete="CASCADE", index=False)  # the index below starts with it
    line = IntegerField()
    cells = JSONField()

    class Meta:
        indexes = ((("upload", "line"), True),)


class ImportProblem(BaseModel):
    """One problem of one row: found when parsing, in the dry run, or when applying."""

    upload = ForeignKeyField(Import, on_delete="CASCADE", index=False)  # the index below starts with it
    source = CharField()  # parse | review | apply
    line = IntegerField()
    column_name = TextField(default="")
    value = TextField(default="")
    reason = TextField()
    severity = CharField()  # error | warning

    class Meta:
        indexes = ((("upload", "source", "line"), False),)


class Persona(BaseModel):
    id = NeverReusedId()
    # No index of its own: (account, email) serves it, and a bare account index tempted PostgreSQL into
    # reading a whole account to find one chunk's personas.
    account = ForeignKeyField(Account, backref="personas", on_delete="CASCADE", index=False)
    email = CharField(null=True)
    phone = CharField(null=True)
    first_name = TextField(null=True)
    last_name = TextField(null=True)
    birthday = DateField(null=True)
    gender = TextField(null=True)
    street = TextField(null=True)
    city = TextField(null=True)
    state = TextField(null=True)
    postal_code = TextField(null=True)
    external_id = TextField(null=True)
    loyalty_member = BooleanField(null=True)
    loyalty_signup_date = DateField(null=True)
    points = BigIntegerField(default=0)
    sms_opt_in = BooleanField(default=False)
    sms_opt_out = BooleanField(default=False)
    sms_consent_at = DateTimeField(null=True)
    sms_consent_import = IntegerField(null=True)
    sms_consent_user = IntegerField(null=True)
    sms_consent_terms = CharField(null=True)
    email_opt_in = BooleanField(default=False)
    email_opt_out = BooleanField(default=False)
    email_consent_at = DateTimeField(null=True)
    email_consent_import = IntegerField(null=True)
    email_consent_user = IntegerField(null=True)
    email_consent_terms = CharField(null=True)
    customer_type = TextField(null=True)
    archived = BooleanField(default=False)
    created_at = DateTimeField(default=utcnow)
    updated_at = DateTimeField(default=utcnow)

    class Meta:
        indexes = (
            (("account", "email"), True),
            (("account", "phone"), True),
        )


class PersonaAttribute(BaseModel):
    persona = ForeignKeyField(Persona, backref="attributes", on_delete="CASCADE", index=False)  # the index below starts with it
    name = CharField()

    class Meta:
        indexes = ((("persona", "name"), True),)


class Audience(BaseModel):
    id = NeverReusedId()
    account = ForeignKeyField(Account, backref="audiences", on_delete="CASCADE")
    name = TextField()
    source_import = IntegerField(null=True, index=True)
    created_at = DateTimeField(default=utcnow)


class AudienceMember(BaseModel):
    audience = ForeignKeyField(Audience, backref="members", on_delete="CASCADE", index=False)  # the index below starts with it
    persona = ForeignKeyField(Persona, on_delete="CASCADE")

    class Meta:
        indexes = ((("audience", "persona"), True),)


class AuditEntry(BaseModel):
    """One change to one persona: who, when, from which import row, each field's old and new value."""

    # No index: every query of the history also filters by import or persona, which are indexed, and an
    # import writes an entry per changed persona.
    account = ForeignKeyField(Account, on_delete="CASCADE", index=False)
    # Plain ids, not foreign keys: the history outlives a persona removed by a revert.
    persona_id = IntegerField(index=True)
    import_id = IntegerField(null=True)
    row = IntegerField(null=True)
    user_id = IntegerField(null=True)
    created_at = DateTimeField(default=utcnow)
    action = CharField()  # created | updated | reverted | archived
    changes = JSONField(default=dict)
    note = CharField(null=True)

    class Meta:
        # A row of an import is applied once: the backstop under the checkpoint.
        indexes = ((("import_id", "row"), True),)


class ReachedDigest(BaseModel):
    """Which personas an import's rows reached and which fields they carried (no values), kept when its file is
    deleted: a revert of an earlier import still knows what this one set again."""

    upload = ForeignKeyField(Import, on_delete="CASCADE", unique=True)
    data = BlobField()


class RememberedMapping(BaseModel):
    """The target an account last confirmed for a header, and the import it was confirmed for."""

    account = ForeignKeyField(Account, on_delete="CASCADE")
    header_key = CharField()
    target = CharField()
    import_id = IntegerField(null=True)  # a plain id: the memory outlives a discarded draft
    remembered_at = DateTimeField(null=True)

    class Meta:
        indexes = ((("account", "header_key"), True),)


class SchemaVersion(BaseModel):
    version = IntegerField()


MODELS = [
    Account, User, UserSession, Membership, Import, UploadChunk, StagedChunk, AppliedUnit, ProblemRow, ImportProblem,
    Persona, PersonaAttribute, Audience, AudienceMember, AuditEntry, ReachedDigest, RememberedMapping, SchemaVersion,
]
