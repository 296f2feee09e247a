"""Local development and test support: never packaged into the Lambda."""
