"""Who may do what: the roles of the server's identities and the actions each may take.

| role            | read | register, attest | approve | promote | break glass | manage tokens |
|-----------------|------|------------------|---------|---------|-------------|---------------|
| ci              | yes  | yes              |         |         |             |               |
| deployer        | yes  |                  |         | yes     |             |               |
| approver        | yes  |                  | yes     |         |             |               |
| release-manager | yes  |                  | yes     | yes     | yes         |               |
| auditor         | yes  |                  |         |         |             |               |
| admin           | yes  |                  |         |         |             | yes           |

Separation of duties beyond the table is enforced by the use-cases: the commit author cannot
approve; whoever approved a release for an environment cannot promote it there.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    CI = "ci"
    DEPLOYER = "deployer"
    APPROVER = "approver"
    RELEASE_MANAGER = "release-manager"
    AUDITOR = "auditor"
    ADMIN = "admin"


class Action(StrEnum):
    READ = "read"
    REGISTER = "register"
    ATTEST = "attest"
    APPROVE = "approve"
    PROMOTE = "promote"
    BREAK_GLASS = "break-glass"
    MANAGE_TOKENS = "manage-tokens"


PERMISSIONS: dict[Role, frozenset[Action]] = {
    Role.CI: frozenset({Action.READ, Action.REGISTER, Action.ATTEST}),
    Role.DEPLOYER: frozenset({Action.READ, Action.PROMOTE}),
    Role.APPROVER: frozenset({Action.READ, Action.APPROVE}),
    Role.RELEASE_MANAGER: frozenset(
        {Action.READ, Action.APPROVE, Action.PROMOTE, Action.BREAK_GLASS}
    ),
    Role.AUDITOR: frozenset({Action.READ}),
    Role.ADMIN: frozenset({Action.READ, Action.MANAGE_TOKENS}),
}


def allowed(role: Role, action: Action) -> bool:
    return action in PERMISSIONS[role]
