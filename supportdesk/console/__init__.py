"""The support console's own code (issue 18): a second Chalice app, console/app.py, for the
people who answer the registry's phone, signed in with Login.gov as themselves.

- permissions.py   roles -> permissions, the one table; every route declares what it needs
- edge.py          middleware and `@access(...)`: session, staff record, role, CSRF, freshness
- pages.py         templates/ (autoescaped, safe_text on every value) and the error map
- signin.py        staff sign-in: chalicelib's Login.gov pieces, phishing-resistant, fresh
- assurance.py     what the ID token says about the authenticator
- staff.py         the staff list (also `manage.py staff add|remove|list`)
- sessions.py      console sessions (idle and absolute expiry, CSRF, freshness)
- desk_audit.py    the desk audit stream (staff changes) and DeskTransaction
- models.py        the desk table (TABLE_PREFIX + "desk")
- settings.py      DESK_* settings
- routes/          one blueprint per part (auth, home, staff, not found)

How to add a page or a permission, and what comes next: README.md in this folder.
"""
