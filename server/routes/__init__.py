"""One HTTP router per resource; :func:`server.api.create_app` includes each with one line."""
