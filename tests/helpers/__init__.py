"""What the tests share: paths, loopback servers (HTTP, SMTP, an Elasticsearch proxy), alert
documents, misbehaving extraction functions.

Test modules import these; they never import each other. Shared fixtures are in
``tests/conftest.py``. This package imports nothing, so an extraction worker that loads
``tests.helpers.extract_faults`` by name stays cheap.
"""
