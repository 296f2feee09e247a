"""The support console's Chalice app: its middleware and its blueprints, nothing else.

A second Chalice project in this repository (its own Lambda function, API, IAM policy and
Login.gov client), sharing code by symlinks that Chalice packages: chalicelib/ ->
../chalicelib (walked from the project folder), vendor/supportdesk -> ../../supportdesk
(vendor/ is added at the zip's root; chalice local puts it on sys.path). The console's own
code is supportdesk/console/; how to add a page or a permission: supportdesk/console/README.md.
"""

from chalice import Chalice

from supportdesk.console import edge
from supportdesk.console.routes import (
    auth_routes,
    desk_routes,
    home_routes,
    not_found,
    person_routes,
    staff_routes,
)

app = Chalice(app_name="nrcme-desk")
edge.install(app)  # request context, security headers, refuse undeclared routes
app.register_blueprint(auth_routes.bp)
app.register_blueprint(home_routes.bp)
app.register_blueprint(person_routes.bp)
app.register_blueprint(staff_routes.bp)
app.register_blueprint(desk_routes.bp)
app.register_blueprint(not_found.bp)
