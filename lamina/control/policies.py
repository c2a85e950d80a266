"""Resource-based policies of functions (per qualifier) and layer versions: AddPermission,
GetPolicy, RemovePermission and their layer-version counterparts.

Policies are stored and returned in the IAM policy document shape Lambda builds, but not
enforced: Lamina does not authenticate requests yet, so no caller is refused because of them.

A policy is keyed by the ARN of what it is attached to: a function's unqualified ARN, a
qualified one (`:1`, `:live`, `:$LATEST` are separate policies, as on Lambda), or a layer
version's ARN. Reads come from memory; every change is written through before it is answered.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Protocol

import sqlalchemy as sa

from lamina.control.model import new_revision_id
from lamina.db import Database
from lamina.errors import (
    PolicyLengthExceededException,
    PreconditionFailedException,
    ResourceConflictException,
    ResourceNotFoundException,
)

# Lambda's limit on a function's resource-based policy, counted on the JSON document.
MAX_POLICY_BYTES = 20_480
NO_POLICY = "The resource you requested does not exist."
FUNCTION_REVISION_MISMATCH = (
    "The RevisionId provided does not match the latest RevisionId for the Lambda function or "
    "alias. Call the GetFunction or the GetAlias API to retrieve the latest RevisionId for your "
    "resource."
)
LAYER_REVISION_MISMATCH = (
    "The RevisionId provided does not match the latest RevisionId for the layer version. "
    "Call the GetLayerVersionPolicy API to retrieve the latest RevisionId."
)
_ACCOUNT_RE = re.compile(r"\d{12}")


@dataclass
class Policy:
    """The statements attached to one resource and the revision a change must name."""

    revision_id: str = field(default_factory=new_revision_id)
    statements: list[dict[str, Any]] = field(default_factory=list)

    def document(self) -> str:
        """The `Policy` string GetPolicy answers: compact JSON, as Lambda sends it."""
        return _compact({"Version": "2012-10-17", "Id": "default", "Statement": self.statements})


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def statement_json(statement: dict[str, Any]) -> str:
    """AddPermission's `Statement` member."""
    return _compact(statement)


def principal(value: str) -> str | dict[str, str]:
    """How Lambda writes a Principal: `*`, an account as its root ARN, an ARN, or a service."""
    if value == "*":
        return "*"
    if _ACCOUNT_RE.fullmatch(value):
        return {"AWS": f"arn:aws:iam::{value}:root"}
    if value.startswith("arn:"):
        return {"AWS": value}
    return {"Service": value}


def function_statement(
    *,
    sid: str,
    action: str,
    principal_value: str,
    resource: str,
    source_arn: str | None = None,
    source_account: str | None = None,
    event_source_token: str | None = None,
    principal_org_id: str | None = None,
    function_url_auth_type: str | None = None,
    invoked_via_function_url: bool | None = None,
) -> dict[str, Any]:
    """One statement of a function's policy, with the condition keys AddPermission sets."""
    equals: dict[str, str] = {}
    if source_account is not None:
        equals["AWS:SourceAccount"] = source_account
    if event_source_token is not None:
        equals["lambda:EventSourceToken"] = event_source_token
    if principal_org_id is not None:
        equals["aws:PrincipalOrgID"] = principal_org_id
    if function_url_auth_type is not None:
        equals["lambda:FunctionUrlAuthType"] = function_url_auth_type
    condition: dict[str, dict[str, str]] = {}
    if equals:
        condition["StringEquals"] = equals
    if source_arn is not None:
        condition["ArnLike"] = {"AWS:SourceArn": source_arn}
    if invoked_via_function_url:
        condition["Bool"] = {"lambda:InvokedViaFunctionUrl": "true"}
    out: dict[str, Any] = {
        "Sid": sid,
        "Effect": "Allow",
        "Principal": principal(principal_value),
        "Action": action,
        "Resource": resource,
    }
    if condition:
        out["Condition"] = condition
    return out


def layer_statement(
    *, sid: str, principal_value: str, resource: str, organization_id: str | None = None
) -> dict[str, Any]:
    """One statement of a layer version's policy (the only action is lambda:GetLayerVersion)."""
    out: dict[str, Any] = {
        "Sid": sid,
        "Effect": "Allow",
        "Principal": principal(principal_value),
        "Action": "lambda:GetLayerVersion",
        "Resource": resource,
    }
    if organization_id is not None:
        out["Condition"] = {"StringEquals": {"aws:PrincipalOrgID": organization_id}}
    return out


class PolicyStore(Protocol):
    def load_all(self) -> dict[str, Policy]: ...
    def put(self, arn: str, policy: Policy | None) -> None:
        """Write the policy of `arn`; None removes it."""
        ...

    def delete_function(self, arn: str) -> None:
        """Remove the policies of a function ARN and of all its qualified ARNs."""
        ...


metadata = sa.MetaData()

resource_policies = sa.Table(
    "resource_policies",
    metadata,
    sa.Column("arn", sa.String(2048), primary_key=True),
    sa.Column("policy", sa.Text, nullable=False),
)


class SqlPolicyStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        db.create(metadata)

    def load_all(self) -> dict[str, Policy]:
        t = resource_policies
        with self.db.engine.connect() as conn:
            rows = conn.execute(sa.select(t.c.arn, t.c.policy)).all()
        return {arn: Policy(**json.loads(text)) for arn, text in rows}

    def put(self, arn: str, policy: Policy | None) -> None:
        t = resource_policies
        with self.db.engine.begin() as conn:
            if policy is None:
                conn.execute(t.delete().where(t.c.arn == arn))
                return
            text = json.dumps({"revision_id": policy.revision_id, "statements": policy.statements})
            if not conn.execute(t.update().where(t.c.arn == arn).values(policy=text)).rowcount:
                conn.execute(t.insert().values(arn=arn, policy=text))

    def delete_function(self, arn: str) -> None:
        t = resource_policies
        escaped = arn.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        with self.db.engine.begin() as conn:
            conn.execute(
                t.delete().where(sa.or_(t.c.arn == arn, t.c.arn.like(escaped + ":%", escape="\\")))
            )


class Policies:
    def __init__(self, *, db: Database, store: PolicyStore) -> None:
        self.db = db
        self.store = store
        self._policies: dict[str, Policy] = {}

    async def load(self) -> None:
        self._policies = await self.db.run(self.store.load_all)

    def find(self, arn: str) -> Policy | None:
        return self._policies.get(arn)

    def get(self, arn: str) -> Policy:
        policy = self._policies.get(arn)
        if policy is None:
            raise ResourceNotFoundException(NO_POLICY)
        return policy

    async def add(
        self,
        arn: str,
        statement: dict[str, Any],
        *,
        revision_id: str | None,
        current_revision: str | None,
        mismatch: str = FUNCTION_REVISION_MISMATCH,
    ) -> Policy:
        """Append a statement. Without a policy yet, a RevisionId must match `current_revision`
        (the function's or alias's; None: nothing matches); with one, the policy's."""
        old = self._policies.get(arn)
        expected = old.revision_id if old is not None else current_revision
        if revision_id is not None and revision_id != expected:
            raise PreconditionFailedException(mismatch)
        statements = old.statements if old is not None else []
        sid = statement["Sid"]
        if any(s["Sid"] == sid for s in statements):
            raise ResourceConflictException(
                f"The statement id ({sid}) provided already exists. Please provide a new "
                "statement id, or remove the existing statement."
            )
        new = Policy(statements=[*statements, statement])
        size = len(new.document().encode())
        if size > MAX_POLICY_BYTES:
            raise PolicyLengthExceededException(
                f"The final policy size ({size}) is bigger than the limit ({MAX_POLICY_BYTES})."
            )
        await self._put(arn, new, old)
        return new

    async def remove(
        self,
        arn: str,
        sid: str,
        *,
        revision_id: str | None,
        mismatch: str = FUNCTION_REVISION_MISMATCH,
    ) -> None:
        """Remove one statement; the policy goes when its last statement does."""
        old = self._policies.get(arn)
        if old is None:
            raise ResourceNotFoundException("No policy is associated with the given resource.")
        if revision_id is not None and revision_id != old.revision_id:
            raise PreconditionFailedException(mismatch)
        kept = [s for s in old.statements if s["Sid"] != sid]
        if len(kept) == len(old.statements):
            raise ResourceNotFoundException(f"Statement {sid} is not found in resource policy.")
        await self._put(arn, Policy(statements=kept) if kept else None, old)

    async def forget(self, arn: str) -> None:
        """The resource is gone: its policy goes with it."""
        if arn in self._policies:
            await self._put(arn, None, self._policies[arn])

    async def forget_function(self, arn: str) -> None:
        """A function is gone: its policy and those of its versions and aliases."""
        prefix = arn + ":"
        gone = [k for k in self._policies if k == arn or k.startswith(prefix)]
        await self.db.run(self.store.delete_function, arn)
        for key in gone:
            self._policies.pop(key, None)

    async def _put(self, arn: str, new: Policy | None, old: Policy | None) -> None:
        if new is None:
            self._policies.pop(arn, None)
        else:
            self._policies[arn] = new
        try:
            await self.db.run(self.store.put, arn, new)
        except BaseException:
            if old is None:
                self._policies.pop(arn, None)
            else:
                self._policies[arn] = old
            raise
