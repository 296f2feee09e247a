"""The support desk's code, run by `manage.py` on a desk machine: never in the Lambda.

- desk.py             find, unlink, disable/enable (one transaction each, audited)
- report.py           the migration report (and templates/report.html)
- csv_validation.py   the registry export's rows, checked without a database
- registry_sync.py    the three-way sync of the valid rows into the tables
"""
