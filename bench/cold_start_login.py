"""One cold start: import the app and answer the first GET /login as a Lambda proxy event.

Run in a fresh process by bench/run.py, with AWS_ENDPOINT_URL pointing at a moto server
and LOGIN_GOV_ISSUER at a local Login.gov. Prints the status code it got.
"""

import app

event = {
    "resource": "/login",
    "path": "/login",
    "httpMethod": "GET",
    "headers": {"Host": "127.0.0.1:8000"},
    "multiValueHeaders": {"Host": ["127.0.0.1:8000"]},
    "queryStringParameters": None,
    "multiValueQueryStringParameters": None,
    "pathParameters": None,
    "stageVariables": None,
    "body": None,
    "isBase64Encoded": False,
    "requestContext": {
        "resourcePath": "/login",
        "httpMethod": "GET",
        "path": "/login",
        "requestId": "bench",
        "stage": "api",
    },
}


class Context:
    aws_request_id = "bench-cold-start"
    function_name = "nrcme-signin-bench"
    memory_limit_in_mb = 512

    def get_remaining_time_in_millis(self):
        return 15000


response = app.app(event, Context())
print(response["statusCode"], flush=True)  # the answer: bench/run.py times until this line
