"""`make bench`'s yardstick for chalice local's own cost per request: one route, no work."""

from chalice import Chalice, Response

app = Chalice(app_name="noop")


@app.route("/")
def noop():
    return Response(body="", status_code=302, headers={"Location": "/account"})
