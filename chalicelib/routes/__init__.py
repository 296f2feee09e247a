"""Routes by capability, one Chalice blueprint each; `app.py` registers them.

Each route reads the request (`chalicelib.edge`), makes one call into its workflow and
renders; failures become pages in one place (`chalicelib.pages.ERROR_RESPONSES`).
"""
