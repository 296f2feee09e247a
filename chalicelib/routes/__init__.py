"""Routes by capability, one Chalice blueprint each; `app.py` registers them.

Each route reads the request (`chalicelib.edge`), makes one call into its workflow and
renders; failures become pages in one place (`chalicelib.pages.ERROR_RESPONSES`).

Workflow modules that `/login` does not use (email changes, recovery, security events,
the schedules, the mail worker) are imported inside the handlers that call them: every
route shares one Lambda, and a cold start should not pay for code its request never runs
(`make bench`, cold_start). Python imports each once per container.
"""
