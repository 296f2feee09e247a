"""The console's routes, one blueprint per part; console/app.py registers each.

- auth_routes.py   /, /login, /auth/callback, /logout, /signed-out (PUBLIC)
- home_routes.py   /home, /search (SEARCH): the search box and its results
- person_routes.py /people/{nr_number} (READ): why can't they get in?
- staff_routes.py  /staff, /staff/add, /staff/role, /staff/remove (STAFF_ADMIN)
- desk_routes.py   /people/{nr_number}/<operation>, /trace, /export-changes: the desk's
                   operations as forms (UNLINK ... CLEAR_SHARED, TRACE, EXPORT_CHANGES)
- not_found.py     /{proxy+}: every unknown path is the 404 page (PUBLIC)
"""
