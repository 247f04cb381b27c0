"""Settings of the example Django project: no database, sessions in signed cookies.

Run it from the repository root::

    gunicorn -k geventws.gunicorn.Worker examples.django_app.wsgi

Set ``DJANGO_SECRET_KEY`` for anything but a local try-out (``DJANGO_DEBUG=1`` for debug pages).
"""

from __future__ import annotations

import os

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "geventws-example-only")
DEBUG = os.environ.get("DJANGO_DEBUG") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]"]

ROOT_URLCONF = "examples.django_app.urls"
WSGI_APPLICATION = "examples.django_app.wsgi.application"

# No models, so no apps and no database: the session lives in a signed cookie.
INSTALLED_APPS: list[str] = []
DATABASES: dict[str, dict[str, str]] = {}
SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
]

USE_I18N = False
USE_TZ = True
TIME_ZONE = "UTC"  # Django sets the process TZ to this; its default is America/Chicago
