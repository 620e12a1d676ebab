"""The officer console (issue 15): the node's web application for the people of an NPPO
who draft, approve, issue and answer certificates, each with a role (docs/console.md).

The pure core: the users and roles (users), the second factor (totp), the workflow of
an export certificate (workflow), the certificate form and its findings (form,
form_spec), the languages (i18n). The shell: the application and its guards (app,
security, context), and the pages by concern (auth, export, inbox, office, admin),
which send and answer through the API's own paths (node.api.submit, node.api.respond)
and keep their state in the node's store (node.store.console, node.store.console_inbox).
"""
