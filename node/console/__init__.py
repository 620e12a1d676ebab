"""The officer console (issue 15): the people who draft, approve, issue and answer
certificates in the node's own web console, each with a role.

Built so far: the console's user accounts and roles (node.console.users) and the
`ephyto console user` commands (node.cli.console). The web console itself (pages,
sessions, lockout, TOTP) is not built yet: docs/console.md lists what is missing.
"""
