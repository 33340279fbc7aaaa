"""HTTP plumbing that knows nothing of Eventory or accounts: flask-smorest's Api and Blueprint,
URL converters, field types, WSGI middleware and the waitress settings."""
