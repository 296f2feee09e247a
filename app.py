"""The Chalice app: two middleware functions and the blueprints, nothing else.

Where things live: README.md, "Where things live".
"""

import gc

# Everything imported here lives as long as the Lambda container: collecting while it loads
# finds nothing, and frozen (gc.freeze) it is not scanned again by every later collection,
# such as the many the first DynamoDB client's creation sets off (make bench, cold_start).
gc.disable()

from chalice import Chalice

from chalicelib import edge
from chalicelib.routes import (
    account_routes,
    help_routes,
    mail_worker,
    recovery_routes,
    schedules,
    security_event_routes,
    signin_routes,
)

app = Chalice(app_name="nrcme-signin")
app.register_middleware(edge.request_context, "all")
app.register_middleware(edge.security_headers, "http")
app.register_blueprint(signin_routes.bp)
app.register_blueprint(account_routes.bp)
app.register_blueprint(recovery_routes.bp)
app.register_blueprint(security_event_routes.bp)
app.register_blueprint(help_routes.bp)
app.register_blueprint(schedules.bp)
app.register_blueprint(mail_worker.bp)

gc.freeze()
gc.enable()
