"""Small WSGI applications (and worker settings) that tests/test_gunicorn.py runs under gunicorn."""
